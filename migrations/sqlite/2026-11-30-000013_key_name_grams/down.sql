DROP TRIGGER api_keys_grams_update;
DROP TRIGGER api_keys_grams_delete;
DROP TRIGGER api_keys_grams_insert;
DROP TABLE key_grams;
DROP TABLE key_gram_positions;
