-- The change feed of submissions, and Idempotency-Key answers.
--
-- Why not page the feed by submission.id: an identity value is taken when a row is inserted, not
-- when its transaction commits, so a transaction holding id 10 can commit after the one holding
-- id 11; a follower that already read 11 would never see 10. Here every change (a creation, a
-- retraction) gets a `position` from a single-row counter, taken with an UPDATE: its row lock is
-- held until the writing transaction ends, so the next writer gets its positions only after the
-- previous one has committed (and become visible). Positions therefore follow commit order, and a
-- reader that sees position p already sees every position below p.

-- One row; writers upsert it (INSERT ... ON CONFLICT DO UPDATE), so an emptied table also works.
CREATE TABLE submission_feed_counter (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_position  bigint NOT NULL CHECK (last_position >= 0)
);

CREATE TABLE submission_change (
    position       bigint PRIMARY KEY,
    -- copied from the submission so the feed's filters need no join
    regency_code   text NOT NULL,
    as_of          date NOT NULL,
    submission_id  bigint NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('created', 'retracted')),
    FOREIGN KEY (regency_code, submission_id) REFERENCES submission (regency_code, id),
    UNIQUE (submission_id, kind)
);
CREATE INDEX submission_change_regency ON submission_change (regency_code, position);

-- Counts stored before this migration (the seed) enter the feed in the order they were stored.
INSERT INTO submission_change (position, regency_code, as_of, submission_id, kind)
SELECT row_number() OVER (ORDER BY e.at, e.id, e.kind), e.regency_code, e.as_of, e.id, e.kind
  FROM (
        SELECT id, regency_code, as_of, received_at AS at, 'created' AS kind FROM submission
        UNION ALL
        SELECT id, regency_code, as_of, retracted_at, 'retracted' FROM submission WHERE retracted_at IS NOT NULL
       ) AS e;
INSERT INTO submission_feed_counter (last_position)
SELECT count(*) FROM submission_change;

-- The first answer to a request sent with an Idempotency-Key, per API key; status is null while
-- the first request is still in flight. Rows older than 24 hours are deleted lazily.
CREATE TABLE idempotency_key (
    api_key_id     text NOT NULL REFERENCES api_key (id),
    key            text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash   text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    status         integer,
    body           text,
    headers        jsonb,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_key_age ON idempotency_key (api_key_id, created_at);
