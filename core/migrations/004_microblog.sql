-- Version 4: XEP-0277 posts and comments, circles, contacts' profiles.
--
-- A post is identified by where it lives: the PEP service (its author's bare JID), the node
-- and the item id. Body columns hold content already cleaned by proto::microblog::html.

CREATE TABLE post (
    id               INTEGER PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    service          TEXT    NOT NULL,                -- bare JID of the PEP service
    node             TEXT    NOT NULL,
    item_id          TEXT    NOT NULL,
    author           TEXT    NOT NULL,                -- bare JID (the service's owner)
    author_name      TEXT,
    title            TEXT,
    body             TEXT    NOT NULL,                -- plain text (searched)
    markdown         TEXT    NOT NULL,
    html             TEXT,                            -- cleaned HTML, when the entry had markup
    images           TEXT    NOT NULL DEFAULT '[]',   -- JSON: remote images (never auto-loaded)
    tags             TEXT    NOT NULL DEFAULT '[]',   -- JSON array
    enclosures       TEXT    NOT NULL DEFAULT '[]',   -- JSON array
    comments_service TEXT,
    comments_node    TEXT,
    audience         TEXT    NOT NULL,                -- public | contacts | circle:NAME
    published        INTEGER NOT NULL,                -- ms
    updated          INTEGER NOT NULL,                -- ms
    received_at      INTEGER NOT NULL,
    comment_count    INTEGER NOT NULL DEFAULT 0,
    truncated        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, service, node, item_id)
);
CREATE INDEX post_feed ON post(account_id, published, id);
CREATE INDEX post_author ON post(account_id, author, published, id);
CREATE INDEX post_comments ON post(account_id, comments_service, comments_node);

CREATE TABLE comment (
    id          INTEGER PRIMARY KEY,
    post_id     INTEGER NOT NULL REFERENCES post(id) ON DELETE CASCADE,
    item_id     TEXT    NOT NULL,
    author      TEXT,                                 -- bare JID
    author_name TEXT,
    verified    INTEGER NOT NULL,                     -- author confirmed by the service
    body        TEXT    NOT NULL,
    markdown    TEXT    NOT NULL,
    published   INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    UNIQUE (post_id, item_id)
);

CREATE VIRTUAL TABLE post_fts USING fts5(title, body, content = 'post', content_rowid = 'id');
CREATE TRIGGER post_fts_insert AFTER INSERT ON post BEGIN
    INSERT INTO post_fts(rowid, title, body) VALUES (new.id, coalesce(new.title, ''), new.body);
END;
CREATE TRIGGER post_fts_delete AFTER DELETE ON post BEGIN
    INSERT INTO post_fts(post_fts, rowid, title, body)
        VALUES ('delete', old.id, coalesce(old.title, ''), old.body);
END;
CREATE TRIGGER post_fts_update AFTER UPDATE OF title, body ON post BEGIN
    INSERT INTO post_fts(post_fts, rowid, title, body)
        VALUES ('delete', old.id, coalesce(old.title, ''), old.body);
    INSERT INTO post_fts(rowid, title, body) VALUES (new.id, coalesce(new.title, ''), new.body);
END;

-- Our circles: a named set of roster groups, published to one node.
CREATE TABLE circle (
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    node       TEXT    NOT NULL,
    groups     TEXT    NOT NULL,                      -- JSON array of roster group names
    PRIMARY KEY (account_id, name),
    UNIQUE (account_id, node)
);

-- What we know of people's profiles (XEP-0084, XEP-0172, XEP-0292, vCard-temp).
CREATE TABLE profile (
    account_id  INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    jid         TEXT    NOT NULL,
    nick        TEXT,
    full_name   TEXT,
    bio         TEXT,
    url         TEXT,
    avatar      TEXT,                                 -- SHA-1 of the image (file in the cache)
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, jid)
);
