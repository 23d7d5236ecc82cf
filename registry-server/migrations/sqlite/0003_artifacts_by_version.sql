-- An artifact belongs to a version: two versions may share one (an identical module or log),
-- so artifacts are keyed by version and digest. Keep in step with
-- ../postgres/0003_artifacts_by_version.sql.
CREATE TABLE artifacts_by_version (
    digest      TEXT    NOT NULL,
    version_id  INTEGER NOT NULL REFERENCES versions(id),
    kind        TEXT    NOT NULL,
    media_type  TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (version_id, digest)
);
INSERT INTO artifacts_by_version (digest, version_id, kind, media_type, size, created_at)
    SELECT digest, version_id, kind, media_type, size, created_at FROM artifacts;
DROP TABLE artifacts;
ALTER TABLE artifacts_by_version RENAME TO artifacts;
CREATE INDEX artifacts_digest ON artifacts(digest);
