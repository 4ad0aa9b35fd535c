-- Party-to-Party exchange: officers' accounts, cases, messages, the durable
-- outbox and the audit trail. Times are Unix milliseconds.

CREATE TABLE users (
    id INTEGER PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    disabled SMALLINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE cases (
    id TEXT PRIMARY KEY NOT NULL,
    role SMALLINT NOT NULL,
    counterpart TEXT NOT NULL,
    template TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    state SMALLINT NOT NULL,
    priority TEXT NOT NULL,
    due_date TEXT,
    subject TEXT NOT NULL,
    policy SMALLINT NOT NULL,
    outcome TEXT,
    failure TEXT,
    created_by BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX cases_updated ON cases (updated_at);
CREATE INDEX cases_state ON cases (state);

CREATE TABLE messages (
    seq INTEGER PRIMARY KEY NOT NULL,
    message_id TEXT NOT NULL,
    from_party TEXT NOT NULL,
    to_party TEXT NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    direction SMALLINT NOT NULL,
    kind SMALLINT NOT NULL,
    template TEXT,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    body_sha256 TEXT NOT NULL,
    envelope BLOB,
    envelope_sha256 TEXT,
    receipt BLOB,
    state SMALLINT NOT NULL,
    in_reply_to TEXT,
    author BIGINT,
    approved_by BIGINT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (from_party, message_id)
);
CREATE INDEX messages_case ON messages (case_id);

CREATE TABLE outbox (
    message_seq BIGINT PRIMARY KEY NOT NULL REFERENCES messages (seq),
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
CREATE INDEX outbox_due ON outbox (state, peer, next_attempt_at);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_case ON audit (case_id, at);
