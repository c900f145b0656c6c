-- extra_superuser revert: drop the planted superuser again (it owns nothing and holds no grant).
-- Identifiers: role.

drop role if exists {role};
