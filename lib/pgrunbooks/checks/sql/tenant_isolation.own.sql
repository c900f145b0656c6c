-- tenant_isolation (own rows), as the connected role: up to %(rows_per_tenant)s rows of each of a member's own
--   tenants (%(tenants)s), through the tenant column's index: the rows the member must be able to see.
select s.pk
from pg_catalog.unnest(%(tenants)s) o(id)
cross join lateral (
  select t.{pk} as pk from {table} t where t.{key} = o.id limit %(rows_per_tenant)s
) s
order by s.pk
