-- Cluster-level roles, shaped like a Supabase project. Idempotent; run as a
-- superuser (the sandbox cluster is initialised with `initdb -U supabase_admin`).
--
-- Works on PostgreSQL 15 and 16+: since 16, CREATEROLE no longer implies admin
-- rights over every role, and membership grants carry INHERIT/SET options. The
-- grants below are made by the superuser with the defaults (INHERIT follows the
-- member's attribute, SET true), and `with admin option` lets `postgres` grant
-- the API roles on to others, as on Supabase. `postgres` can `set role
-- authenticated` on every version.

-- Serialise concurrent installs into different databases of one cluster:
-- pg_authid is a shared catalog, so this lock is cluster-wide.
lock table pg_catalog.pg_authid in share row exclusive mode;

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  -- On Supabase `postgres` is the dashboard/migration role, not a superuser.
  -- An existing `postgres` (e.g. a cluster's bootstrap superuser) is left as is.
  if not exists (select from pg_catalog.pg_roles where rolname = 'postgres') then
    create role postgres login nosuperuser createrole createdb bypassrls;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres with admin option;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;

-- Supabase's per-role statement timeouts.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
