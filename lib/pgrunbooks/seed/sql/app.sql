-- Per database: the VictorySync application schema in `public`, owned by the
-- `postgres` role (as tables created from the Supabase dashboard are). Run once,
-- as a superuser, on a fresh database after roles.sql, auth.sql, extensions.sql.
--
-- Every foreign key has a supporting index whose leading column is the FK
-- column; no index duplicates or prefixes another.

grant usage, create on schema public to postgres;
set role postgres;

create table public.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  slug text not null constraint organizations_slug_key unique,
  subscription_status text not null default 'trialing'
    check (subscription_status in ('trialing', 'active', 'past_due', 'canceled')),
  plan text not null default 'starter' check (plan in ('starter', 'growth', 'enterprise')),
  created_by uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table public.profiles (
  id uuid primary key
    constraint profiles_id_fkey references auth.users (id) on delete cascade,
  email text not null,
  full_name text,
  global_role text not null default 'user' check (global_role in ('user', 'platform_admin')),
  created_at timestamptz not null default now()
);

create table public.org_users (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null
    constraint org_users_org_id_fkey references public.organizations (id) on delete cascade,
  user_id uuid not null
    constraint org_users_user_id_fkey references public.profiles (id) on delete cascade,
  role text not null default 'member' check (role in ('owner', 'admin', 'member', 'viewer')),
  created_at timestamptz not null default now(),
  constraint org_users_org_id_user_id_key unique (org_id, user_id)
);
create index org_users_user_id_idx on public.org_users (user_id);

create table public.phone_numbers (
  id uuid primary key default gen_random_uuid(),
  org_id uuid
    constraint phone_numbers_org_id_fkey references public.organizations (id) on delete set null,
  number text not null constraint phone_numbers_number_key unique,
  label text,
  assigned_to_org boolean not null default false,
  created_at timestamptz not null default now()
);
create index phone_numbers_org_id_idx on public.phone_numbers (org_id);

create table public.calls (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null
    constraint calls_org_id_fkey references public.organizations (id) on delete cascade,
  phone_number_id uuid
    constraint calls_phone_number_id_fkey references public.phone_numbers (id) on delete set null,
  direction text not null check (direction in ('inbound', 'outbound')),
  from_number text not null,
  to_number text not null,
  status text not null
    check (status in ('completed', 'missed', 'no-answer', 'voicemail', 'busy', 'failed')),
  duration integer not null default 0 check (duration >= 0),
  created_at timestamptz not null default now(),
  ended_at timestamptz
);
create index calls_org_id_created_at_idx on public.calls (org_id, created_at);
create index calls_phone_number_id_idx on public.calls (phone_number_id);
create index calls_created_at_idx on public.calls (created_at);

create table public.recordings (
  id uuid primary key default gen_random_uuid(),
  call_id uuid not null
    constraint recordings_call_id_fkey references public.calls (id) on delete cascade,
  org_id uuid not null
    constraint recordings_org_id_fkey references public.organizations (id) on delete cascade,
  url text not null,
  duration integer not null default 0 check (duration >= 0),
  created_at timestamptz not null default now()
);
create index recordings_call_id_idx on public.recordings (call_id);
create index recordings_org_id_created_at_idx on public.recordings (org_id, created_at);

create table public.billing_records (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null
    constraint billing_records_org_id_fkey references public.organizations (id) on delete cascade,
  description text not null,
  amount numeric(12, 2) not null,
  currency text not null default 'usd',
  status text not null default 'pending'
    check (status in ('pending', 'paid', 'failed', 'refunded')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index billing_records_org_id_created_at_idx on public.billing_records (org_id, created_at);

create table public.invoices (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null
    constraint invoices_org_id_fkey references public.organizations (id) on delete cascade,
  number text not null constraint invoices_number_key unique,
  amount numeric(12, 2) not null,
  status text not null default 'draft'
    check (status in ('draft', 'open', 'paid', 'void', 'uncollectible')),
  issued_at timestamptz,
  due_at timestamptz,
  created_at timestamptz not null default now()
);
create index invoices_org_id_created_at_idx on public.invoices (org_id, created_at);

create table public.sms_messages (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null
    constraint sms_messages_org_id_fkey references public.organizations (id) on delete cascade,
  phone_number_id uuid
    constraint sms_messages_phone_number_id_fkey references public.phone_numbers (id) on delete set null,
  direction text not null check (direction in ('inbound', 'outbound')),
  from_number text not null,
  to_number text not null,
  body text not null,
  status text not null check (status in ('queued', 'sent', 'delivered', 'failed', 'received')),
  segments smallint not null default 1,
  created_at timestamptz not null default now()
);
create index sms_messages_org_id_created_at_idx on public.sms_messages (org_id, created_at);
create index sms_messages_phone_number_id_idx on public.sms_messages (phone_number_id);
create index sms_messages_created_at_idx on public.sms_messages (created_at);

create table public.archives (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null
    constraint archives_org_id_fkey references public.organizations (id) on delete cascade,
  kind text not null check (kind in ('calls', 'sms', 'billing', 'export')),
  payload jsonb not null default '{}',
  created_at timestamptz not null default now()
);
create index archives_org_id_created_at_idx on public.archives (org_id, created_at);

-- Archive tables: the same columns, in the same order and of the same types,
-- as the live tables, plus archived_at, so `insert into call_archives select
-- c.*, now() from calls c` lines up. No foreign keys by design: archived rows
-- outlive the organizations and phone numbers they mention.
create table public.call_archives (
  like public.calls including defaults including constraints,
  archived_at timestamptz not null default now(),
  constraint call_archives_pkey primary key (id)
);
comment on table public.call_archives is
  'Calls older than the retention window (1 year). No foreign keys by design.';

create table public.sms_archives (
  like public.sms_messages including defaults including constraints,
  archived_at timestamptz not null default now(),
  constraint sms_archives_pkey primary key (id)
);
comment on table public.sms_archives is
  'SMS older than the retention window (6 months). No foreign keys by design.';

-- The guide's monitoring table.
create table public.db_metrics (
  id serial primary key,
  metric_name text,
  metric_value float8,
  recorded_at timestamptz default now()
);
-- Finds the latest snapshot of a metric without reading the table (database_growth refuses a
-- full read of a large db_metrics).
create index db_metrics_metric_name_recorded_at_idx on public.db_metrics (metric_name, recorded_at);

reset role;
