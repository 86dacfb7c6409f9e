-- Push (issue 9): which UnifiedPush endpoint the registration was made for, as a SHA-256
-- (hex) — an endpoint is a capability URL, so only its hash is kept. A distributor sends
-- the same endpoint again on every app start; an unchanged one needs no new registration.
-- NULL for registrations made before this migration (or for app servers of any kind).
ALTER TABLE push_registration ADD COLUMN endpoint_sha256 TEXT;
