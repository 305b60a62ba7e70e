DROP INDEX key_search_grams;
DROP FUNCTION key_name_grams(TEXT);
