-- mutable_search_path: an ordinary (SECURITY INVOKER) function in public without `set search_path`.
-- Plants: `function`(p_org_id uuid) returns text, language sql, stable, owned by postgres, executable by
--   PUBLIC (the default) and so by anon and authenticated. Its body is schema-qualified; the function
--   still looks up operators and anything unqualified on the caller's search_path.
-- Found by: function_search_path.
-- Identifiers: function (schema-qualified name, without the argument list).

set local role postgres;

create function {function}(p_org_id uuid) returns text
language sql stable
as $$
  select o.name from public.organizations o where o.id = p_org_id
$$;
