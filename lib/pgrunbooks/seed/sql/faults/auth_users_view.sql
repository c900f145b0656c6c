-- auth_users_view: "the team page needs the members' e-mails".
-- Plants: view public.member_directory (org_id, user_id, role, email, signed_up_at) joining
--   public.org_users to auth.users, owned by postgres (not security_invoker), select granted to
--   authenticated: every signed-in user reads every user's e-mail.
-- Found by: auth_users_exposed (also, legitimately, security_definer_views).

set local role postgres;

create view public.member_directory as
select ou.org_id, ou.user_id, ou.role, u.email, u.created_at as signed_up_at
from public.org_users ou
join auth.users u on u.id = ou.user_id;
grant select on public.member_directory to authenticated;
