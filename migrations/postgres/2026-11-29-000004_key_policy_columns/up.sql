-- deactivated_by_person: a deactivation made by a person in the dashboard, which no API
-- key may undo (SECURITY.md, "What an API key may do").
-- holds_slot: whether the key counts against its channel's limit. A rolled key keeps its
-- slot until its grace ends, so rolling cannot hold more live keys than the limit.
ALTER TABLE api_keys ADD COLUMN deactivated_by_person BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_keys ADD COLUMN holds_slot BOOLEAN NOT NULL DEFAULT TRUE;
CREATE INDEX api_keys_roll_ends ON api_keys (roll_ends_at) WHERE holds_slot AND roll_ends_at IS NOT NULL;
