-- Every change to a message (its row, or its attachment) bumps its revision. Records go
-- out in events from more than one thread (the account's actor, the Client), so a front
-- end can receive an older snapshot after a newer one; with the revision it keeps the
-- newer (a receipt's "delivered" must not undo a correction that landed meanwhile).
ALTER TABLE message ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER message_revision AFTER UPDATE ON message
    WHEN NEW.revision = OLD.revision
BEGIN
    UPDATE message SET revision = OLD.revision + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER attachment_insert_revision AFTER INSERT ON attachment
BEGIN
    UPDATE message SET revision = revision + 1 WHERE id = NEW.message_id;
END;

CREATE TRIGGER attachment_update_revision AFTER UPDATE ON attachment
BEGIN
    UPDATE message SET revision = revision + 1 WHERE id = NEW.message_id;
END;
