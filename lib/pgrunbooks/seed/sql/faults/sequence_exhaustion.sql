-- sequence_exhaustion: an int4 serial close to its maximum (years of inserts and gaps later).
-- Plants: setval(`sequence`, `value`): the sequence behind public.db_metrics.id (int4) at 96.9
--   percent of 2,147,483,647; about 67 million inserts from now every insert fails.
-- Found by: sequence_exhaustion.
-- Values: sequence (its regclass text), value.

select pg_catalog.setval(%(sequence)s, %(value)s);
