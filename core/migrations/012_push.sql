-- Push (issue 9): the XEP-0357 app server (push gateway) and node this account enabled on
-- its server; enabled again after every fresh session, disabled when the account goes.
-- The node's secret is not here: it is kept with the account's secrets.
CREATE TABLE push_registration (
    account_id INTEGER PRIMARY KEY REFERENCES account(id) ON DELETE CASCADE,
    service    TEXT    NOT NULL,      -- the gateway's JID
    node       TEXT    NOT NULL,
    created_at INTEGER NOT NULL       -- ms since the epoch
);
