-- Code cells' builds, named by their key (the request in canonical form with the policy and the
-- builder key that decide the result): queued by executors, claimed by builders with a lease,
-- and kept once signed or failed, so that an unchanged cell is built once. Keep in step with
-- ../sqlite/0006_code_builds.sql.
CREATE TABLE code_builds (
    build_key   TEXT    PRIMARY KEY,
    request     TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    stage       TEXT    NOT NULL,
    worker      TEXT,
    lease_until BIGINT,
    attempts    BIGINT  NOT NULL DEFAULT 0,
    error       TEXT,
    diagnostics TEXT,
    artifacts   TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX code_builds_by_stage ON code_builds (stage, created_at);

-- The blobs a signed code build made, so that the artifacts route serves them by digest.
CREATE TABLE code_build_blobs (
    digest     TEXT NOT NULL,
    build_key  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    PRIMARY KEY (digest, build_key)
);
