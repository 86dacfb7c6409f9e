-- Connection security (issue 10): what earlier logins proved about the account's server,
-- so that a later login never accepts less (a man in the middle stripping the offer).
-- pin_scram: a SCRAM mechanism was used, so PLAIN is refused from now on.
-- pin_channel_binding: a -PLUS mechanism (channel binding) was used, so a login without
-- it is refused unless XEP-0474 shows the server really changed its offer.
ALTER TABLE account ADD COLUMN pin_scram INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account ADD COLUMN pin_channel_binding INTEGER NOT NULL DEFAULT 0;
