-- tenant_isolation (probe), run as authenticated with a member's JWT claims, or as anon: how many of the
--   sampled rows of other tenants (all tenants, for anon) the session can see, fetched by primary key
--   (an index scan on a bounded list). Zero is the only correct answer.
select count(*)::int as leaked
from {table} t
where t.{pk} = any (%(ids)s)
