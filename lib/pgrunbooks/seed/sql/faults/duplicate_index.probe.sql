-- duplicate_index probe: the index `index` and public.sms_messages_org_id_created_at_idx both index
--   public.sms_messages on the same key columns.
select count(*) = 2
from pg_catalog.pg_index i
where i.indrelid = to_regclass('public.sms_messages')
  and i.indexrelid in (to_regclass('public.sms_messages_org_id_created_at_idx'), to_regclass(%(index)s))
  and i.indkey::text = (select o.indkey::text from pg_catalog.pg_index o
                        where o.indexrelid = to_regclass('public.sms_messages_org_id_created_at_idx'))
