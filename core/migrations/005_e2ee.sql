-- End-to-end encryption (issue 7): OMEMO device state, remote devices and trust, and the
-- encryption of messages and conversations.
--
-- Every private key and session state is sealed (AES-256-GCM) under a per-account key that
-- lives in the OS keyring (or the 0600 secrets file where there is none), so this file
-- alone reveals no secret.

-- Our own OMEMO device (one per account, both namespaces).
CREATE TABLE omemo_identity (
    account_id   INTEGER PRIMARY KEY REFERENCES account(id) ON DELETE CASCADE,
    device_id    INTEGER NOT NULL,
    identity     BLOB    NOT NULL,                  -- sealed private key
    max_pre_key  INTEGER NOT NULL DEFAULT 0         -- pre-key ids are never reused
);

CREATE TABLE omemo_signed_pre_key (
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    id         INTEGER NOT NULL,
    key        BLOB    NOT NULL,                    -- sealed (key pair, signatures)
    created    INTEGER NOT NULL,                    -- seconds since the epoch
    PRIMARY KEY (account_id, id)
);

CREATE TABLE omemo_pre_key (
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    id         INTEGER NOT NULL,
    key        BLOB    NOT NULL,                    -- sealed key pair
    PRIMARY KEY (account_id, id)
);

CREATE TABLE omemo_session (
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    ns         TEXT    NOT NULL CHECK (ns IN ('legacy', 'omemo2')),
    jid        TEXT    NOT NULL,
    device_id  INTEGER NOT NULL,
    state      BLOB    NOT NULL,                    -- sealed ratchet state
    PRIMARY KEY (account_id, ns, jid, device_id)
);

-- Devices of others (and our own other devices), from their published device lists.
CREATE TABLE omemo_device (
    account_id  INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    ns          TEXT    NOT NULL CHECK (ns IN ('legacy', 'omemo2')),
    jid         TEXT    NOT NULL,
    device_id   INTEGER NOT NULL,
    label       TEXT,
    active      INTEGER NOT NULL DEFAULT 1,         -- still in the device list
    identity    BLOB,                               -- identity key, once seen (public)
    failure     TEXT,                               -- why we cannot encrypt to it, if so
    PRIMARY KEY (account_id, ns, jid, device_id)
);

-- Trust in identity keys, per contact: blind trust before verification by default.
CREATE TABLE omemo_trust (
    account_id  INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    jid         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,                   -- hex of the 32 key bytes
    trust       TEXT    NOT NULL CHECK (trust IN ('blind', 'verified', 'untrusted', 'undecided')),
    first_seen  INTEGER NOT NULL,                   -- ms since the epoch
    PRIMARY KEY (account_id, jid, fingerprint)
);

-- How a message travelled: NULL = plaintext. An encrypted message that could not be
-- decrypted keeps its place in the timeline with the reason in `undecryptable`.
ALTER TABLE message ADD COLUMN encryption TEXT CHECK (encryption IN ('omemo', 'omemo2', 'otr'));
ALTER TABLE message ADD COLUMN undecryptable TEXT;

-- The sticky per-conversation choice: once encrypted, never plaintext again unless the
-- user says so.
ALTER TABLE conversation ADD COLUMN encryption TEXT CHECK (encryption IN ('omemo', 'otr'));
