-- kiln registry schema (PostgreSQL). Keep in step with ../sqlite/0001_initial.sql.
-- Times are Unix milliseconds; booleans are 0/1.

CREATE TABLE users (
    id          BIGSERIAL PRIMARY KEY,
    login       TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE tokens (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT  NOT NULL REFERENCES users(id),
    name          TEXT    NOT NULL,
    hash          TEXT    NOT NULL UNIQUE,
    scopes        TEXT    NOT NULL,
    crate_pattern TEXT,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT
);

CREATE TABLE crates (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT    NOT NULL,
    canonical_name  TEXT    NOT NULL UNIQUE,
    description     TEXT,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE owners (
    crate_id  BIGINT  NOT NULL REFERENCES crates(id),
    user_id   BIGINT  NOT NULL REFERENCES users(id),
    PRIMARY KEY (crate_id, user_id)
);

CREATE TABLE versions (
    id            BIGSERIAL PRIMARY KEY,
    crate_id      BIGINT  NOT NULL REFERENCES crates(id),
    version       TEXT    NOT NULL,
    version_key   TEXT    NOT NULL,
    checksum      TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    state_reason  TEXT,
    yanked        BIGINT  NOT NULL DEFAULT 0,
    index_line    TEXT    NOT NULL,
    metadata      TEXT    NOT NULL,
    origin        TEXT,
    published_by  BIGINT  NOT NULL REFERENCES users(id),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    UNIQUE (crate_id, version_key)
);
CREATE INDEX versions_state ON versions(state);

CREATE TABLE reviews (
    id          BIGSERIAL PRIMARY KEY,
    version_id  BIGINT  NOT NULL REFERENCES versions(id),
    decision    TEXT    NOT NULL,
    reviewer    BIGINT  NOT NULL REFERENCES users(id),
    reason      TEXT,
    criteria    TEXT,
    bundle      TEXT,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE reports (
    id          BIGSERIAL PRIMARY KEY,
    version_id  BIGINT  NOT NULL REFERENCES versions(id),
    kind        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE artifacts (
    digest      TEXT    PRIMARY KEY,
    version_id  BIGINT  NOT NULL REFERENCES versions(id),
    kind        TEXT    NOT NULL,
    media_type  TEXT    NOT NULL,
    size        BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE jobs (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    attempts      BIGINT  NOT NULL DEFAULT 0,
    max_attempts  BIGINT  NOT NULL,
    run_at        BIGINT  NOT NULL,
    lease_until   BIGINT,
    worker        TEXT,
    last_error    TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX jobs_ready ON jobs(kind, state, run_at);

CREATE TABLE events (
    seq         BIGSERIAL PRIMARY KEY,
    kind        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
