-- OTR (issue 7): the contacts' OTR keys we have seen, and which the user verified (by the
-- Socialist Millionaires' Protocol or by comparing fingerprints). Public data only: our own
-- OTR private key lives in the OS keyring, and OTR sessions live in memory.
CREATE TABLE otr_fingerprint (
    account_id  INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    jid         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,                   -- 40 upper-case hex digits, no spaces
    verified    INTEGER NOT NULL DEFAULT 0,
    first_seen  INTEGER NOT NULL,                   -- ms since the epoch
    PRIMARY KEY (account_id, jid, fingerprint)
);
