-- Revoked artifacts (incident response). Keep in step with ../postgres/0002_revocations.sql.
CREATE TABLE revocations (
    id          INTEGER PRIMARY KEY,
    digest      TEXT    NOT NULL UNIQUE,
    version_id  INTEGER REFERENCES versions(id),
    reason      TEXT    NOT NULL,
    revoked_by  INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL
);
