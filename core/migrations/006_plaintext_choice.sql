-- The user turned a conversation's encryption off (issue 7): then an encrypted message from
-- the contact does not turn it back on by itself. (NULL encryption alone cannot tell "never
-- chosen" from "chosen off".)
ALTER TABLE conversation ADD COLUMN plaintext_chosen INTEGER NOT NULL DEFAULT 0;
