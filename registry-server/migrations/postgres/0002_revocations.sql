-- Revoked artifacts (incident response). Keep in step with ../sqlite/0002_revocations.sql.
CREATE TABLE revocations (
    id          BIGSERIAL PRIMARY KEY,
    digest      TEXT    NOT NULL UNIQUE,
    version_id  BIGINT  REFERENCES versions(id),
    reason      TEXT    NOT NULL,
    revoked_by  BIGINT  NOT NULL REFERENCES users(id),
    created_at  BIGINT  NOT NULL
);
