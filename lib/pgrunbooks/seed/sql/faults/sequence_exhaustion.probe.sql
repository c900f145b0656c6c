-- sequence_exhaustion probe: the sequence `sequence` has used more than 95 percent of its range.
select coalesce(pg_catalog.pg_sequence_last_value(s.seqrelid), 0)::float8 / s.seqmax > 0.95
from pg_catalog.pg_sequence s
where s.seqrelid = to_regclass(%(sequence)s)
