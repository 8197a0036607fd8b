-- regency_latest changes under the regency's write lock; the recompute upserts.
--
-- Why: 0005's recompute deleted a regency's row and inserted it again, reading submission in
-- between. Two transactions recomputing one regency at once (an operator's DELETE in psql beside
-- a retraction through the API) could both find no row to keep and both insert it: the second
-- failed on the primary key. And a recompute that read submission before another writer of the
-- regency committed could write back a row that writer had just made stale.
--
-- The API's writers already hold the regency's advisory lock for the whole transaction
-- (service/submissions/queries.py, lock_regencies; class 622016). Every trigger now takes the same
-- lock before it reads submission: for the API's writers it is held already (taking it again
-- costs nothing and waits for nothing); a write from elsewhere waits for the regency's other
-- writers here. Each statement after the lock takes its snapshot once the previous holder has
-- committed, so it reads every earlier write of the regency.
--
-- The functions also carry the search_path they were made with: an operator's session with
-- another search_path still finds these tables.

CREATE FUNCTION regency_latest_lock(codes text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Sorted, as lock_regencies sorts them, so two writers of several regencies never deadlock.
    PERFORM count(pg_advisory_xact_lock(622016, hashtext(code)))
       FROM (SELECT DISTINCT unnest(codes) AS code ORDER BY 1) AS c;
END
$$;

CREATE OR REPLACE FUNCTION regency_latest_recompute(codes text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM regency_latest_lock(codes);
    INSERT INTO regency_latest AS l (regency_code, as_of, submission_id, recorded)
    SELECT c.code, s.as_of, s.id, s.recorded
      FROM (SELECT DISTINCT unnest(codes) AS code) c
     CROSS JOIN LATERAL (
            SELECT as_of, id, recorded FROM submission
             WHERE regency_code = c.code AND retracted_at IS NULL
             ORDER BY as_of DESC, id DESC LIMIT 1) s
        ON CONFLICT (regency_code) DO UPDATE
       SET as_of = EXCLUDED.as_of, submission_id = EXCLUDED.submission_id, recorded = EXCLUDED.recorded;
    DELETE FROM regency_latest l
     WHERE l.regency_code = ANY(codes)
       AND NOT EXISTS (SELECT 1 FROM submission s WHERE s.regency_code = l.regency_code AND s.retracted_at IS NULL);
END
$$;

CREATE OR REPLACE FUNCTION regency_latest_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM regency_latest_lock(ARRAY(SELECT regency_code FROM added WHERE retracted_at IS NULL));
    INSERT INTO regency_latest AS l (regency_code, as_of, submission_id, recorded)
    SELECT DISTINCT ON (regency_code) regency_code, as_of, id, recorded
      FROM added
     WHERE retracted_at IS NULL
     ORDER BY regency_code, as_of DESC, id DESC
        ON CONFLICT (regency_code) DO UPDATE
       SET as_of = EXCLUDED.as_of, submission_id = EXCLUDED.submission_id, recorded = EXCLUDED.recorded
     WHERE (EXCLUDED.as_of, EXCLUDED.submission_id) > (l.as_of, l.submission_id);
    RETURN NULL;
END
$$;

ALTER FUNCTION regency_latest_lock(text[]) SET search_path FROM CURRENT;
ALTER FUNCTION regency_latest_recompute(text[]) SET search_path FROM CURRENT;
ALTER FUNCTION regency_latest_after_insert() SET search_path FROM CURRENT;
ALTER FUNCTION regency_latest_after_update() SET search_path FROM CURRENT;
ALTER FUNCTION regency_latest_after_delete() SET search_path FROM CURRENT;
ALTER FUNCTION regency_latest_after_truncate() SET search_path FROM CURRENT;
