-- Starling profile database, version 1.
-- Accounts, roster, conversations, messages (with an FTS5 index), the durable outbox and
-- archive positions. Secrets never live here: passwords are in the OS keyring or a 0600 file.

CREATE TABLE account (
    id              INTEGER PRIMARY KEY,
    jid             TEXT    NOT NULL UNIQUE,          -- bare JID
    resource        TEXT    NOT NULL,                 -- stable per-install resource
    server_host     TEXT,                             -- --server override
    server_port     INTEGER,
    tls_mode        TEXT    NOT NULL DEFAULT 'auto' CHECK (tls_mode IN ('auto', 'starttls', 'direct')),
    ca_file         TEXT,                             -- extra trusted CA (PEM path)
    enabled         INTEGER NOT NULL DEFAULT 1,
    first_sync_days INTEGER NOT NULL DEFAULT 30,
    roster_ver      TEXT,                             -- XEP-0237 roster version
    mam_last_id     TEXT,                             -- newest archive id (own archive) we hold
    mam_synced_at   INTEGER,                          -- ms, when catch-up last completed
    created_at      INTEGER NOT NULL
);

CREATE TABLE contact (
    account_id   INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    jid          TEXT    NOT NULL,
    name         TEXT,
    subscription TEXT    NOT NULL DEFAULT 'none' CHECK (subscription IN ('none', 'to', 'from', 'both')),
    ask          INTEGER NOT NULL DEFAULT 0,
    groups       TEXT    NOT NULL DEFAULT '[]',       -- JSON array of group names
    PRIMARY KEY (account_id, jid)
);

CREATE TABLE subscription_request (
    account_id  INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    jid         TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, jid)
);

CREATE TABLE conversation (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    peer          TEXT    NOT NULL,                   -- bare JID
    kind          TEXT    NOT NULL DEFAULT 'chat',
    last_activity INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, peer)
);

CREATE TABLE message (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    conversation_id INTEGER NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
    outgoing        INTEGER NOT NULL,
    sender          TEXT    NOT NULL,                 -- author's JID as seen (full when known)
    stanza_id       TEXT,                             -- the message's @id
    origin_id       TEXT,                             -- XEP-0359 origin-id
    archive_id      TEXT,                             -- XEP-0359 stanza-id by our own server
    body            TEXT    NOT NULL,
    timestamp       INTEGER NOT NULL,                 -- ms since epoch (delay stamp if any)
    received_at     INTEGER NOT NULL,                 -- ms since epoch, local
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'delivered', 'displayed', 'failed', 'received')),
    error           TEXT,
    edited          INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX message_archive_id ON message(account_id, archive_id) WHERE archive_id IS NOT NULL;
CREATE INDEX message_timeline ON message(conversation_id, timestamp, id);
CREATE INDEX message_stanza_id ON message(conversation_id, stanza_id);
CREATE INDEX message_origin_id ON message(conversation_id, origin_id);

-- Earlier bodies of corrected messages (XEP-0308), oldest first.
CREATE TABLE message_edit (
    message_id    INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    body          TEXT    NOT NULL,                   -- the body before this correction
    correction_id TEXT    NOT NULL,                   -- @id of the correcting stanza (dedup)
    replaced_at   INTEGER NOT NULL,
    UNIQUE (message_id, correction_id)
);

CREATE VIRTUAL TABLE message_fts USING fts5(body, content = 'message', content_rowid = 'id');
CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN
    INSERT INTO message_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN
    INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER message_fts_update AFTER UPDATE OF body ON message BEGIN
    INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO message_fts(rowid, body) VALUES (new.id, new.body);
END;

-- The durable outbox: stanzas accepted for sending and not yet acknowledged by the server
-- (XEP-0198). A row is written in the same transaction as its message and deleted on ack.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    message_id INTEGER REFERENCES message(id) ON DELETE CASCADE,
    stanza     TEXT    NOT NULL,                      -- serialised XML, resent verbatim
    created_at INTEGER NOT NULL
);
