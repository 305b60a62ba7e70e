DROP INDEX api_keys_roll_ends;
ALTER TABLE api_keys DROP COLUMN holds_slot;
ALTER TABLE api_keys DROP COLUMN deactivated_by_person;
