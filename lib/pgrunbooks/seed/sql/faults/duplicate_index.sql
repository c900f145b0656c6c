-- duplicate_index: a second index on exactly the columns of an existing one.
-- Plants: an index `index` on public.sms_messages (org_id, created_at): same columns, order, opclasses
--   and predicate as public.sms_messages_org_id_created_at_idx.
-- Found by: duplicate_indexes.
-- Identifiers: index (the duplicate, in the table's schema).

create index {index} on public.sms_messages (org_id, created_at);
