-- On SQLite only `INTEGER PRIMARY KEY` names a table's own rowid: the outbox's
-- `message_seq BIGINT PRIMARY KEY` kept a unique index beside the table, one
-- more B-tree written with every message queued and read on every lookup by
-- message. The table is rebuilt with the same columns, rows and indexes.
CREATE TABLE outbox_rowid (
    message_seq INTEGER PRIMARY KEY NOT NULL REFERENCES messages (seq),
    peer TEXT NOT NULL,
    state SMALLINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
INSERT INTO outbox_rowid (message_seq, peer, state, attempts, next_attempt_at, expires_at,
                          claimed_by, claimed_until, last_error, created_at)
    SELECT message_seq, peer, state, attempts, next_attempt_at, expires_at,
           claimed_by, claimed_until, last_error, created_at
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rowid RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, peer, next_attempt_at);
CREATE INDEX outbox_queue ON outbox (state, peer, message_seq);
