-- Which instance recorded a change: an instance has already forgotten its own changes
-- when it answered, so its change poller skips them (re-forgetting them half a second
-- later only evicted keys it had just cached again).
ALTER TABLE key_changes ADD COLUMN origin TEXT NOT NULL DEFAULT '';
