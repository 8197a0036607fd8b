-- The latest effective submission of each regency, kept by triggers on submission.
--
-- Why: the coverage of a regency as of D is its effective submission with the greatest
-- as_of <= D, one probe of submission_effective per regency. The nation answer makes 514 of
-- them, and on a 2-core machine it missed its latency target (bench/RESULTS.md). When D is on or
-- after a regency's latest effective as_of, which is what a dashboard asks for (today), the
-- answer is this row: coverage/queries.py probes submission only for regencies whose latest
-- report is after D.
--
-- "Latest" follows the order the reads use: the greatest (as_of, id) among the rows not retracted.
-- A regency with no such row has no row here.
CREATE TABLE regency_latest (
    regency_code   text PRIMARY KEY REFERENCES regency (code),
    as_of          date NOT NULL,
    submission_id  bigint NOT NULL,
    recorded       integer NOT NULL
);

-- Recompute the rows of the given regencies from submission (after a retraction, a deletion, a
-- load with triggers off): one probe of submission_effective each.
CREATE FUNCTION regency_latest_recompute(codes text[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM regency_latest WHERE regency_code = ANY(codes);
    INSERT INTO regency_latest (regency_code, as_of, submission_id, recorded)
    SELECT c.code, s.as_of, s.id, s.recorded
      FROM (SELECT DISTINCT unnest(codes) AS code) c
     CROSS JOIN LATERAL (
            SELECT as_of, id, recorded FROM submission
             WHERE regency_code = c.code AND retracted_at IS NULL
             ORDER BY as_of DESC, id DESC LIMIT 1) s;
$$;

-- New rows can only move a regency's latest forward: one statement per INSERT statement, whatever
-- its size (a 10,000-item batch is one), taking the greatest new row per regency. ON CONFLICT takes
-- the row's lock and sees the latest committed version, so two writers keep the greater of theirs.
CREATE FUNCTION regency_latest_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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

-- A retraction (or any other change to a row) may take back a regency's latest: recompute the
-- regencies the statement touched, before and after. Writers change rows one regency at a time,
-- under its lock; only operators delete.
CREATE FUNCTION regency_latest_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM regency_latest_recompute(ARRAY(SELECT regency_code FROM before UNION SELECT regency_code FROM after));
    RETURN NULL;
END
$$;

CREATE FUNCTION regency_latest_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM regency_latest_recompute(ARRAY(SELECT DISTINCT regency_code FROM removed));
    RETURN NULL;
END
$$;

CREATE FUNCTION regency_latest_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM regency_latest;
    RETURN NULL;
END
$$;

CREATE TRIGGER regency_latest_insert AFTER INSERT ON submission
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION regency_latest_after_insert();
CREATE TRIGGER regency_latest_update AFTER UPDATE ON submission
    REFERENCING OLD TABLE AS before NEW TABLE AS after
    FOR EACH STATEMENT EXECUTE FUNCTION regency_latest_after_update();
CREATE TRIGGER regency_latest_delete AFTER DELETE ON submission
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION regency_latest_after_delete();
CREATE TRIGGER regency_latest_truncate AFTER TRUNCATE ON submission
    FOR EACH STATEMENT EXECUTE FUNCTION regency_latest_after_truncate();

SELECT regency_latest_recompute(ARRAY(SELECT code FROM regency));
