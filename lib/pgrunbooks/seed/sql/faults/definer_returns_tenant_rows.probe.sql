-- definer_returns_tenant_rows probe: the function exists and authenticated may execute it.
select coalesce(pg_catalog.has_function_privilege('authenticated',
                  pg_catalog.to_regprocedure(%(function)s || '(uuid)'), 'execute'), false)
