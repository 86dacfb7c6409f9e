-- File uploads in flight (issue 8). A file message exists from the moment the user sends
-- it (state 'pending', body = the file's name) so it shows at once; its outbox row is
-- added only when the file is on the server, in the same transaction that removes the
-- upload row. A restart finds the row and uploads again (or fails the message visibly
-- when the file is gone): never a dangling link, never sent twice.
CREATE TABLE upload (
    message_id INTEGER PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    path       TEXT    NOT NULL,                    -- the local file
    encrypt    INTEGER NOT NULL,                    -- XEP-0454 (the conversation is OMEMO)
    created_at INTEGER NOT NULL                     -- ms since the epoch
);
