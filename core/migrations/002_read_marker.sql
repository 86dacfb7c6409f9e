-- Version 2: how far the user has read each conversation (unread counts).
-- Conversations that existed before count as read, so an upgrade shows no stale unread badge.
ALTER TABLE conversation ADD COLUMN read_up_to INTEGER NOT NULL DEFAULT 0;
UPDATE conversation
   SET read_up_to = COALESCE((SELECT max(id) FROM message WHERE conversation_id = conversation.id), 0);
