-- invalid_index probe: the index `index` exists and is not valid.
select not i.indisvalid from pg_catalog.pg_index i where i.indexrelid = to_regclass(%(index)s)
