-- unused_index probe: the index index exists.
select to_regclass(%(index)s) is not null
