-- kiln registry schema (SQLite). Keep in step with ../postgres/0001_initial.sql.
-- Times are Unix milliseconds; booleans are 0/1.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    login       TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE tokens (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    name          TEXT    NOT NULL,
    hash          TEXT    NOT NULL UNIQUE,
    scopes        TEXT    NOT NULL,
    crate_pattern TEXT,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);

CREATE TABLE crates (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL,
    canonical_name  TEXT    NOT NULL UNIQUE,
    description     TEXT,
    created_at      INTEGER NOT NULL
);

CREATE TABLE owners (
    crate_id  INTEGER NOT NULL REFERENCES crates(id),
    user_id   INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (crate_id, user_id)
);

CREATE TABLE versions (
    id            INTEGER PRIMARY KEY,
    crate_id      INTEGER NOT NULL REFERENCES crates(id),
    version       TEXT    NOT NULL,
    version_key   TEXT    NOT NULL,
    checksum      TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    state_reason  TEXT,
    yanked        INTEGER NOT NULL DEFAULT 0,
    index_line    TEXT    NOT NULL,
    metadata      TEXT    NOT NULL,
    origin        TEXT,
    published_by  INTEGER NOT NULL REFERENCES users(id),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (crate_id, version_key)
);
CREATE INDEX versions_state ON versions(state);

CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY,
    version_id  INTEGER NOT NULL REFERENCES versions(id),
    decision    TEXT    NOT NULL,
    reviewer    INTEGER NOT NULL REFERENCES users(id),
    reason      TEXT,
    criteria    TEXT,
    bundle      TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    version_id  INTEGER NOT NULL REFERENCES versions(id),
    kind        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE artifacts (
    digest      TEXT    PRIMARY KEY,
    version_id  INTEGER NOT NULL REFERENCES versions(id),
    kind        TEXT    NOT NULL,
    media_type  TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    run_at        INTEGER NOT NULL,
    lease_until   INTEGER,
    worker        TEXT,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs(kind, state, run_at);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
