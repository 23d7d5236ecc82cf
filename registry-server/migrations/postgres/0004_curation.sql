-- Curation: the features a version is reviewed with, and closures imported together.
-- Keep in step with ../sqlite/0004_curation.sql.
ALTER TABLE versions ADD COLUMN features TEXT NOT NULL DEFAULT '[]';
ALTER TABLE versions ADD COLUMN approved_features TEXT;
UPDATE versions SET approved_features = features WHERE state = 'approved';

CREATE TABLE closures (
    id          BIGSERIAL PRIMARY KEY,
    token       TEXT    NOT NULL UNIQUE,
    root        TEXT    NOT NULL,
    created_by  BIGINT  NOT NULL REFERENCES users(id),
    created_at  BIGINT  NOT NULL
);
CREATE TABLE closure_members (
    closure_id  BIGINT  NOT NULL REFERENCES closures(id),
    version_id  BIGINT  NOT NULL REFERENCES versions(id),
    PRIMARY KEY (closure_id, version_id)
);
