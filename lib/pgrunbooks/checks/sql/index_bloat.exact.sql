-- index_bloat (exact): pgstatindex() of one btree index (reads the whole index). Run only for indexes
--   the estimate flagged.
select t.index_size, t.leaf_pages, t.empty_pages, t.deleted_pages, t.avg_leaf_density, t.leaf_fragmentation
from {pgstatindex}(%(oid)s::oid::regclass) t
