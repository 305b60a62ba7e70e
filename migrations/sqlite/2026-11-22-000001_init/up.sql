-- Latchkey schema, SQLite flavour. The PostgreSQL twin lives under migrations/postgres
-- with the same folder name; tests check both against src/db/schema.rs.
-- Ids are `INTEGER PRIMARY KEY` so they alias the rowid; times are UTC in TIMESTAMP.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP
);
CREATE UNIQUE INDEX users_username ON users (username);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    source_ip TEXT,
    user_agent TEXT
);
CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE channels (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    key_limit BIGINT,
    key_count BIGINT NOT NULL DEFAULT 0,
    is_system BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX channels_name ON channels (name);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channels (id),
    key_id TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    last_four TEXT NOT NULL,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    description TEXT,
    scopes TEXT NOT NULL,
    allowed_cidrs TEXT NOT NULL,
    postback_url TEXT,
    off_the_record BOOLEAN NOT NULL DEFAULT FALSE,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    last_used_ip TEXT,
    last_used_order BIGINT NOT NULL DEFAULT 0,
    roll_ends_at TIMESTAMP,
    rolled_to_key_id TEXT,
    expiry_notice_sent_at TIMESTAMP
);
CREATE UNIQUE INDEX api_keys_key_id ON api_keys (key_id);
CREATE UNIQUE INDEX api_keys_key_hash ON api_keys (key_hash);
CREATE UNIQUE INDEX api_keys_channel_name ON api_keys (channel_id, name_lower);
CREATE INDEX api_keys_channel_name_lower ON api_keys (channel_id, name_lower, id);
CREATE INDEX api_keys_channel_created ON api_keys (channel_id, created_at, id);
CREATE INDEX api_keys_channel_last_used ON api_keys (channel_id, last_used_order, id);
CREATE INDEX api_keys_name_lower ON api_keys (name_lower, id);
CREATE INDEX api_keys_created ON api_keys (created_at, id);
CREATE INDEX api_keys_last_used ON api_keys (last_used_order, id);
CREATE INDEX api_keys_expires ON api_keys (expires_at);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    actor_user_id BIGINT,
    action TEXT NOT NULL,
    source_ip TEXT,
    channel_id BIGINT,
    channel_name TEXT,
    key_id TEXT,
    key_name TEXT,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at, id);
CREATE INDEX audit_events_action ON audit_events (action, occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor, occurred_at);
CREATE INDEX audit_events_channel ON audit_events (channel_id, occurred_at);
CREATE INDEX audit_events_key ON audit_events (key_id, occurred_at);

CREATE TABLE request_log (
    id INTEGER PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    api_key_id BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    source_ip TEXT
);
CREATE INDEX request_log_key ON request_log (api_key_id, occurred_at, id);
CREATE INDEX request_log_key_status ON request_log (api_key_id, status, occurred_at);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    api_key_id BIGINT,
    event_type TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at TIMESTAMP,
    last_status INTEGER,
    last_error TEXT,
    locked_until TIMESTAMP,
    locked_by TEXT
);
CREATE INDEX outbox_pending ON outbox (delivered_at, next_attempt_at);
CREATE INDEX outbox_key ON outbox (api_key_id, created_at);

CREATE TABLE key_changes (
    id INTEGER PRIMARY KEY,
    key_hash TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX key_changes_changed ON key_changes (changed_at);

CREATE TABLE login_attempts (
    id INTEGER PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    username TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    success BOOLEAN NOT NULL
);
CREATE INDEX login_attempts_username ON login_attempts (username, occurred_at);
CREATE INDEX login_attempts_ip ON login_attempts (source_ip, occurred_at);
