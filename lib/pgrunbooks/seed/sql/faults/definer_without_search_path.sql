-- definer_without_search_path: a SECURITY DEFINER function without `set search_path`.
-- Plants: `function`(p_org_id uuid) returns boolean, language sql, stable, security definer,
--   owned by postgres, executable by authenticated (and PUBLIC). It runs with its owner's rights
--   but resolves names through the caller's search_path: whoever can create objects earlier on
--   that path can run code as postgres.
-- Found by: security_definer_search_path.
-- Identifiers: function (schema-qualified name, without the argument list).

set local role postgres;

create function {function}(p_org_id uuid) returns boolean
language sql stable security definer
as $$
  select exists (select 1 from public.org_users ou
                 where ou.org_id = p_org_id and ou.user_id = auth.uid()
                   and ou.role in ('owner', 'admin'))
$$;

grant execute on function {function}(uuid) to authenticated;
