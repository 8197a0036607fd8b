-- A key check that travels with a request's first statement instead of costing a round trip.
--
-- Why: every authenticated request checked its key in a statement of its own before its work,
-- one round trip out of two for a read answer and out of three for a POST. A worker keeps the
-- parts of a key that never change (its token hash, role and scopes) once it has read them, and
-- checks the part that does (revocation) in the same query string as the request's first
-- statement on the primary: this function, then the statement. It raises when the key is revoked,
-- gone, or no longer what the worker holds, so the statements after it do not run and nothing is
-- written; the service answers 401 (auth.py). SQLSTATE KT401 is ours: no PostgreSQL error has it.
CREATE FUNCTION api_key_still_good(key_id text, key_token_hash text, key_role text, key_scopes text[])
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM 1
       FROM api_key
      WHERE id = key_id AND revoked_at IS NULL
        AND token_hash = key_token_hash AND role = key_role AND scopes = key_scopes;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the API key % is unknown, revoked or changed', key_id USING ERRCODE = 'KT401';
    END IF;
    RETURN true;
END;
$$;
