-- Shared files (issue 8): what a file message shares, beside the message itself. The body
-- keeps the link (what other clients show); this row is what Starling shows: the file's
-- name, size, type and dimensions as announced (XEP-0446) or known (our own uploads), the
-- sender's tiny preview, and where the file is on this machine once fetched (or sent).
CREATE TABLE attachment (
    message_id INTEGER PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
    url        TEXT    NOT NULL,      -- https, or aesgcm:// (key in the fragment); '' while uploading
    name       TEXT    NOT NULL,      -- as announced, else from the link; never used as a path
    media_type TEXT,
    size       INTEGER,               -- bytes, as announced
    width      INTEGER,
    height     INTEGER,
    preview    BLOB,                  -- the sender's small preview image (XEP-0264), if any
    local_path TEXT,                  -- the file on this machine (fetched, or the one we sent)
    error      TEXT                   -- why the last fetch failed
);
