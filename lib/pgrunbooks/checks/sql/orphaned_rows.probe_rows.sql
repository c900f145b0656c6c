-- orphaned_rows (probe by rows): NOT EXISTS anti-join of every non-null value against the referenced key
--   (run with enable_seqscan off, so both sides are read through their indexes when they have one). Used
--   when the column has many distinct values (recordings.call_id) or no index.
select c.{col}::text as key, count(*) as rows
from {child} c
where c.{col} is not null
  and not exists (select 1 from {parent} p where p.{pcol} = c.{col})
group by c.{col}
order by c.{col}
limit %(max_keys)s
