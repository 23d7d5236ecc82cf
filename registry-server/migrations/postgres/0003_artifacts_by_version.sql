-- An artifact belongs to a version: two versions may share one (an identical module or log),
-- so artifacts are keyed by version and digest. Keep in step with
-- ../sqlite/0003_artifacts_by_version.sql.
ALTER TABLE artifacts DROP CONSTRAINT artifacts_pkey;
ALTER TABLE artifacts ADD PRIMARY KEY (version_id, digest);
CREATE INDEX artifacts_digest ON artifacts(digest);
