-- The Secretariat directory (role `gsp directory serve`) and a node's alarms.
-- Times are Unix milliseconds (UTC) in BIGINT.

-- The append-only Merkle log: one row per leaf, never updated or deleted.
CREATE TABLE directory_log (
    leaf_index BIGINT PRIMARY KEY NOT NULL,
    party TEXT NOT NULL,
    kind SMALLINT NOT NULL,
    entry BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    logged_at BIGINT NOT NULL
);
CREATE INDEX directory_log_party ON directory_log (party, leaf_index);

-- Registrations waiting for the Secretariat's approval (state 0 pending,
-- 1 approved, 2 superseded by a later submission).
CREATE TABLE directory_pending (
    id INTEGER PRIMARY KEY NOT NULL,
    party TEXT NOT NULL,
    submission BLOB NOT NULL,
    root_fingerprint TEXT NOT NULL,
    issued BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    state SMALLINT NOT NULL
);
CREATE INDEX directory_pending_party ON directory_pending (party, state);

-- A node's alarms: things an operator must look at (`gsp status`).
CREATE TABLE node_alarms (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    occurrences BIGINT NOT NULL,
    acknowledged_at BIGINT
);
CREATE INDEX node_alarms_open ON node_alarms (acknowledged_at, kind);
