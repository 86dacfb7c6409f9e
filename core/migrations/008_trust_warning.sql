-- A decrypted message whose sender's key is not trusted (marked untrusted, or a new key of
-- a contact whose keys were verified, not decided about yet) keeps that warning with it
-- (issue 7): trust decides whom we encrypt to, and also how much a message is believed.
ALTER TABLE message ADD COLUMN trust_warning TEXT;
