-- table_bloat (exact): pgstattuple_approx() of one table: reads the pages the visibility map does not
--   mark all-visible, estimates the rest. Run only for tables the estimate flagged.
select t.table_len, t.scanned_percent, t.approx_tuple_len, t.approx_tuple_percent,
       t.dead_tuple_len, t.dead_tuple_percent, t.approx_free_space, t.approx_free_percent
from {pgstattuple_approx}(%(oid)s::oid::regclass) t
