-- The registry: provinces, regencies, their eligible population, the national
-- target; API keys and the audit trail of every write.

CREATE TABLE province (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{2}$'),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE regency (
    code           text PRIMARY KEY CHECK (code ~ '^[0-9]{2}\.[0-9]{2}$'),
    province_code  text NOT NULL REFERENCES province (code),
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    kind           text NOT NULL CHECK (kind IN ('kabupaten', 'kota')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT regency_code_in_province CHECK (left(code, 2) = province_code)
);
CREATE INDEX regency_province ON regency (province_code, code);

CREATE TABLE eligible_population (
    regency_code    text NOT NULL REFERENCES regency (code),
    effective_from  date NOT NULL,
    count           integer NOT NULL CHECK (count >= 1),
    source          text CHECK (char_length(source) <= 500),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (regency_code, effective_from)
);

CREATE TABLE national_target (
    effective_from  date PRIMARY KEY,
    -- numeric(5,2): at most two decimals, exact; the check bounds it to (0, 100]
    target_percent  numeric(5, 2) NOT NULL CHECK (target_percent > 0 AND target_percent <= 100),
    note            text CHECK (char_length(note) <= 500),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_key (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{8,32}$'),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    role        text NOT NULL CHECK (role IN ('reader', 'submitter', 'admin')),
    -- province (NN) and regency (NN.NN) codes a submitter may write for
    scopes      text[] NOT NULL DEFAULT '{}',
    token_hash  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE audit_event (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    actor_key_id   text,
    actor_name     text,
    action         text NOT NULL,
    resource       text NOT NULL,
    before         jsonb,
    after          jsonb,
    request_id     text
);
