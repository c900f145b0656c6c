-- orphaned_rows (probe by distinct keys): walks the distinct values of an indexed column with a recursive
--   "loose index scan" (one index probe per distinct value, never the whole table), keeps the values with
--   no referenced row (NOT EXISTS on the referenced key's index) and counts their rows through the index.
--   Used when the column has few distinct values for its rows (tenant ids).
with recursive walk(k) as (
  (select c.{col} from {child} c where c.{col} is not null order by c.{col} limit 1)
  union all
  select (select c.{col} from {child} c where c.{col} > w.k order by c.{col} limit 1)
  from walk w
  where w.k is not null
)
select w.k::text as key,
       (select count(*) from {child} c where c.{col} = w.k) as rows
from walk w
where w.k is not null
  and not exists (select 1 from {parent} p where p.{pcol} = w.k)
order by w.k
limit %(max_keys)s
