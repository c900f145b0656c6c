-- missing_grant: a table whose tenant policy is written for members, but whose SELECT grant to
--   authenticated was revoked (a migration that re-created the grants and forgot one).
-- Plants: revoke select on public.recordings from authenticated (insert, update, delete and the policy
--   recordings_tenant_isolation stay).
-- Found by: tenant_isolation (a member reading it gets SQLSTATE 42501).

set local role postgres;

revoke select on public.recordings from "authenticated";
