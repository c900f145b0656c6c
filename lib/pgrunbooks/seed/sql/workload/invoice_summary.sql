-- invoice_summary: the billing page's totals per invoice status for one organization (backend,
--   `postgres` role).
-- Variables: orgs.
\set k random(1, :orgs)
select i.status, count(*) as invoices, sum(i.amount) as total
  from public.invoices i where i.org_id = md5('org:' || (:k)::int)::uuid
 group by i.status order by i.status;
