-- Curation: the features a version is reviewed with, and closures imported together.
-- Keep in step with ../postgres/0004_curation.sql.
--
-- `features` is the feature set (a JSON array of names, sorted; "default" when a dependent's
-- default features are on) the version's current review round covers; `approved_features` is
-- the set approved so far (NULL until the first approval). A version is in the index while it
-- has approved features; a round that extends them runs while the version stays approved.
ALTER TABLE versions ADD COLUMN features TEXT NOT NULL DEFAULT '[]';
ALTER TABLE versions ADD COLUMN approved_features TEXT;
UPDATE versions SET approved_features = features WHERE state = 'approved';

-- A closure imported in one request: its members are audited and built against the approved
-- crates and each other, through an index only workers know the token of.
CREATE TABLE closures (
    id          INTEGER PRIMARY KEY,
    token       TEXT    NOT NULL UNIQUE,
    root        TEXT    NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL
);
CREATE TABLE closure_members (
    closure_id  INTEGER NOT NULL REFERENCES closures(id),
    version_id  INTEGER NOT NULL REFERENCES versions(id),
    PRIMARY KEY (closure_id, version_id)
);
