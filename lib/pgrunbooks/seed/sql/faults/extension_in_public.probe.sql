-- extension_in_public probe: the extension `extension` is installed in public.
select exists (select 1 from pg_catalog.pg_extension e
               join pg_catalog.pg_namespace n on n.oid = e.extnamespace
               where quote_ident(e.extname) = %(extension)s and n.nspname = 'public')
