-- Version 3: group chat (XEP-0045) with bookmarks (XEP-0402), room archives (XEP-0313 on the
-- room), occupant ids (XEP-0421), mentions, retraction (XEP-0424) and moderation (XEP-0425).
-- Room passwords are secrets: they live in the keyring, never here.

CREATE TABLE room (
    account_id     INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    jid            TEXT    NOT NULL,                 -- room bare JID
    nick           TEXT    NOT NULL,                 -- our nickname in it
    name           TEXT,                             -- from the bookmark or the room
    autojoin       INTEGER NOT NULL DEFAULT 1,       -- the user wants to be in it (joined on connect)
    bookmarked     INTEGER NOT NULL DEFAULT 0,       -- the server's bookmark list has it (XEP-0402)
    subject        TEXT,
    info           TEXT,                             -- JSON: what the room said about itself (disco#info)
    mam_last_id    TEXT,                             -- newest room-archive id we hold
    mam_synced_at  INTEGER,                          -- ms, when its catch-up last completed
    removed        TEXT,                             -- why the room removed us, until we rejoin
    PRIMARY KEY (account_id, jid)
);

-- Invitations waiting for an answer.
CREATE TABLE invitation (
    account_id  INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    room        TEXT    NOT NULL,
    inviter     TEXT,
    reason      TEXT,
    kind        TEXT    NOT NULL CHECK (kind IN ('mediated', 'direct')),
    received_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, room)
);

-- conversation.kind (since version 1): chat = 1:1, groupchat = a room, private = with a
-- room occupant (peer = room@service/nick). message.kind adds notice: what a room told us.
ALTER TABLE message ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat'
    CHECK (kind IN ('chat', 'groupchat', 'private', 'notice'));
ALTER TABLE message ADD COLUMN occupant_id TEXT;          -- XEP-0421, stable author id in a room
ALTER TABLE message ADD COLUMN mention INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message ADD COLUMN retracted INTEGER NOT NULL DEFAULT 0;  -- body removed (XEP-0424/0425)
ALTER TABLE message ADD COLUMN retracted_by TEXT;         -- the moderator, when moderated

-- A room numbers its own archive, so archive ids are unique per conversation, not per account.
DROP INDEX message_archive_id;
CREATE UNIQUE INDEX message_archive_id ON message(conversation_id, archive_id) WHERE archive_id IS NOT NULL;
