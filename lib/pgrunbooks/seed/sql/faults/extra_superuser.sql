-- extra_superuser (cluster scope): a login role left over from the migration off the old host.
-- Plants: a role `role` (legacy_admin) with LOGIN and SUPERUSER. Roles belong to the cluster: every database sees
--   it, clean ones included, until extra_superuser.revert.sql drops it. The fault's hook runs
--   this only when the role does not exist yet (create role has no "if not exists").
-- Found by: privileged_roles.
-- Identifiers: role.

create role {role} login superuser;
