-- policy_without_rls: policies written, row level security never enabled.
-- Plants: public.announcements (id, title, body, published_at) with `rows` rows (half not yet
--   published), a policy `policy` for select to authenticated using (published_at <= now()), select
--   granted to authenticated, and row level security left disabled: every member reads the drafts.
-- Found by: policies_without_rls (also, legitimately, rls_disabled).
-- Identifiers: policy. Values: anchor, rows.

set local role postgres;

create table public.announcements (
  id bigint generated always as identity primary key,
  title text not null,
  body text not null default '',
  published_at timestamptz
);
create policy {policy} on public.announcements for select to authenticated
  using (published_at <= now());
grant select on public.announcements to authenticated;

insert into public.announcements (title, body, published_at)
select 'Release ' || n, 'What is new in release ' || n,
       case when n %% 2 = 0 then %(anchor)s::timestamptz - make_interval(days => n) end
from generate_series(1, %(rows)s) n;
