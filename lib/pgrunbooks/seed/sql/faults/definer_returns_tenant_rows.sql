-- definer_returns_tenant_rows: a SECURITY DEFINER function in public, executable by authenticated, that
--   returns a tenant table's rows for any organization id it is given.
-- Plants: `function`(p_org_id uuid) returns setof public.billing_records, language sql, stable, security
--   definer, set search_path = '' (so security_definer_search_path is satisfied), owned by postgres
--   (BYPASSRLS); EXECUTE revoked from PUBLIC and granted to authenticated.
-- Found by: definer_api_execute (critical: any logged-in user reads any organization's billing via /rpc).
-- Identifiers: function (schema-qualified name, without the argument list).

set local role postgres;

create function {function}(p_org_id uuid) returns setof public.billing_records
language sql stable security definer set search_path = ''
as $$
  select b.* from public.billing_records b where b.org_id = p_org_id
$$;
revoke execute on function {function}(uuid) from public;
grant execute on function {function}(uuid) to authenticated;
