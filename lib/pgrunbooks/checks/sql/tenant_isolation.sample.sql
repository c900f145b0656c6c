-- tenant_isolation (sample), as the connected role: up to %(rows_per_tenant)s rows of each of the first
--   %(sample_tenants)s tenants (in key order), through the tenant column's index (the first rows it yields, not a
--   sort of all the tenant's rows): their primary keys and tenant.
select s.pk, o.id as tenant
from (select x.{tenant_key} as id from {tenant_table} x order by x.{tenant_key} limit %(sample_tenants)s) o
cross join lateral (
  select t.{pk} as pk from {table} t where t.{key} = o.id limit %(rows_per_tenant)s
) s
order by o.id, s.pk
