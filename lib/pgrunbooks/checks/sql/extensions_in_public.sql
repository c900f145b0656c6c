-- extensions_in_public: extensions installed in public or another exposed schema (%(exposed_schemas)s)
--   (splinter 0014): their functions, types and tables become part of the Data API; whether each can be
--   moved with ALTER EXTENSION ... SET SCHEMA.
-- Privileges: none (catalogs only).
-- Caveats: a non-relocatable extension moves only by being dropped and created again.
select e.extname::text as extension,
       n.nspname::text as schema,
       e.extversion::text as version,
       e.extrelocatable as relocatable,
       pg_catalog.pg_get_userbyid(e.extowner)::text as owner,
       (select count(*) from pg_catalog.pg_depend d
        where d.refclassid = 'pg_catalog.pg_extension'::regclass and d.refobjid = e.oid
          and d.deptype = 'e')::int as members
from pg_catalog.pg_extension e
join pg_catalog.pg_namespace n on n.oid = e.extnamespace
where n.nspname = 'public' or n.nspname = any (%(exposed_schemas)s::text[])
order by e.extname
