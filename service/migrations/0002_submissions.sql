-- Submissions: cumulative recording counts reported by regency systems.
-- The regency code leads every key so the table can be distributed by regency.

CREATE TABLE submission (
    id                   bigint GENERATED ALWAYS AS IDENTITY,
    regency_code         text NOT NULL REFERENCES regency (code),
    as_of                date NOT NULL CHECK (as_of >= DATE '2011-01-01'),
    recorded             integer NOT NULL CHECK (recorded >= 0),
    reference            text CHECK (char_length(reference) <= 100),
    note                 text CHECK (char_length(note) <= 1000),
    warnings             jsonb NOT NULL DEFAULT '[]',
    -- null for counts loaded by an operator from the command line (seed, bench)
    submitted_by_key_id  text REFERENCES api_key (id),
    received_at          timestamptz NOT NULL DEFAULT now(),
    retracted_at         timestamptz,
    retraction_reason    text CHECK (char_length(retraction_reason) BETWEEN 1 AND 500),
    retracted_by_key_id  text REFERENCES api_key (id),
    PRIMARY KEY (regency_code, id),
    CHECK ((retracted_at IS NULL) = (retraction_reason IS NULL))
);
CREATE UNIQUE INDEX submission_id ON submission (id);
-- The effective submission of a regency as of D is the first row here with as_of <= D.
CREATE INDEX submission_effective ON submission (regency_code, as_of DESC, id DESC)
    INCLUDE (recorded) WHERE retracted_at IS NULL;
