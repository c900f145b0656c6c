-- 001_metrics: the history store's first schema. Applied once by pgrunbooks.history.store.migrate
-- (recorded in pgrunbooks.schema_version), inside one transaction, in the history database.
-- Every table is keyed by `target`: the redacted target name the snapshot was taken from
-- (`local`, `service:victorysync-prod`…), so one history database can hold several targets.

-- One metrics snapshot per target and UTC day (a second capture the same day replaces it).
create table pgrunbooks.snapshots (
  id bigserial primary key,
  target text not null,
  day date not null,
  taken_at timestamptz not null,
  server_version integer not null,
  database_name text not null,
  -- when these change between two snapshots the cumulative counters may have restarted
  postmaster_start timestamptz not null,
  stats_reset timestamptz,            -- pg_stat_statements_info.stats_reset (PostgreSQL 14+)
  database_stats_reset timestamptz,   -- pg_stat_database.stats_reset of this database
  database_bytes bigint not null,
  cluster_bytes bigint,               -- every database the role may size: what fills the disk
  connections integer not null,
  max_connections integer not null,
  xact_commit bigint,
  xact_rollback bigint,
  blks_read bigint,
  blks_hit bigint,
  cache_hit_ratio double precision,
  live_tuples bigint,
  dead_tuples bigint,
  wal_lsn pg_lsn,                     -- null on a standby
  wal_bytes numeric,                  -- pg_stat_wal.wal_bytes (PostgreSQL 14+)
  xid_age integer,                    -- age(datfrozenxid) of this database
  cluster_xid_age integer,            -- the oldest database of the cluster
  statements integer not null default 0,
  synthetic boolean not null default false,
  constraint snapshots_target_day_key unique (target, day)
);
create index snapshots_target_taken_at_idx on pgrunbooks.snapshots (target, taken_at);

-- Sizes per relation in each snapshot.
create table pgrunbooks.table_sizes (
  snapshot_id bigint not null references pgrunbooks.snapshots (id) on delete cascade,
  relation text not null,             -- format('%I.%I', schema, name)
  total_bytes bigint not null,
  table_bytes bigint not null,
  index_bytes bigint not null,
  live_tuples bigint,
  dead_tuples bigint,
  primary key (snapshot_id, relation)
);

-- pg_stat_statements as it was at each snapshot (never reset by pgrunbooks): cumulative counters,
-- one row per (queryid, userid, dbid), top-level and nested entries summed.
create table pgrunbooks.statements (
  snapshot_id bigint not null references pgrunbooks.snapshots (id) on delete cascade,
  queryid bigint not null,
  userid oid not null,
  dbid oid not null,
  calls bigint not null,
  total_exec_time double precision not null,
  rows bigint not null,
  shared_blks_hit bigint not null,
  shared_blks_read bigint not null,
  shared_blks_dirtied bigint not null,
  shared_blks_written bigint not null,
  temp_blks_read bigint not null,
  temp_blks_written bigint not null,
  stats_since timestamptz,            -- PostgreSQL 17+: when this entry started counting
  primary key (snapshot_id, queryid, userid, dbid)
);

-- Normalised query texts, once per target and queryid (the latest text seen).
create table pgrunbooks.statement_texts (
  target text not null,
  queryid bigint not null,
  query text not null,
  primary key (target, queryid)
);

-- Every suite run and its findings (written by the engine; read by the run-to-run diff and
-- monthly/database_trends).
create table pgrunbooks.runs (
  id bigserial primary key,
  suite text not null,
  target text not null,
  started_at timestamptz not null,
  run_dir text
);
create index runs_suite_target_started_at_idx on pgrunbooks.runs (suite, target, started_at);

create table pgrunbooks.run_findings (
  run_id bigint not null references pgrunbooks.runs (id) on delete cascade,
  key text not null,
  check_id text not null,
  severity text not null,
  object text,
  title text
);
create index run_findings_run_id_idx on pgrunbooks.run_findings (run_id);

-- Restore and PITR drills (pgrunbooks.history.store.record_drill).
create table pgrunbooks.drills (
  id bigserial primary key,
  kind text not null,                 -- restore, pitr…
  started_at timestamptz not null,
  target text not null,
  verdict text not null,              -- pass, fail…
  rto_seconds double precision,
  rpo_seconds double precision,
  detail jsonb not null default '{}',
  recorded_at timestamptz not null default now()
);
create index drills_target_started_at_idx on pgrunbooks.drills (target, started_at);
