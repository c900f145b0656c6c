-- tenant_isolation (members): up to %(sample)s users who belong to at least two tenants, with their tenants,
--   read as the connected role (the truth the probes are compared with). Bounded: only the first
--   %(scan_rows)s memberships in user order are considered.
select m.{member}::text as user_id,
       array_agg(distinct m.{tenant} order by m.{tenant}) as tenants
from {membership} m
where m.{member} in (select u.{member} from {membership} u order by u.{member} limit %(scan_rows)s)
group by m.{member}
having count(distinct m.{tenant}) >= 2
order by m.{member}
limit %(sample)s
