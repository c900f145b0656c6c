-- extension_in_public: `create extension pg_trgm` without `with schema` (search_path starts with public).
-- Plants: extension `extension` (pg_trgm) in schema public, created by the platform admin (as the
--   dashboard does).
-- Found by: extensions_in_public.
-- Identifiers: extension.

create extension {extension} with schema public;
