-- The signing keys of the deployment: one row per role, the key id every replica must sign
-- with. The first replica to start on the database records its keys; a replica with other keys
-- refuses to start. Keep in step with ../sqlite/0005_deployment_keys.sql.
CREATE TABLE deployment_keys (
    role        TEXT    PRIMARY KEY,
    key_id      TEXT    NOT NULL,
    recorded_at BIGINT  NOT NULL
);
