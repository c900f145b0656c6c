-- tenant_isolation (admitted), in the probe's savepoint, as the member (or anon) who saw rows of other
--   tenants: for each permissive SELECT policy of the table, how many of those rows its own USING
--   expression admits: one count per policy (the array), each filtered by the server's own deparsed
--   expression (pg_get_expr, schema-qualified under the checks' search_path); a policy without one
--   admits none. Row level security still applies, so only the rows the session sees are counted.
select array[{counts}]::int[] as admitted
from {table} t
where t.{pk} = any (%(ids)s)
