"""The bulk import's file and SQL: check the CSV's bytes, COPY it into a staging table, classify every row in SQL.

The file is read once, as bytes, and refused (:class:`~pgrunbooks.errors.UsageError`, exit
3, naming the line) when it is missing, not UTF-8, holds a NUL byte, has a line longer
than :data:`MAX_LINE_BYTES` or a header other than ``email,organization,role``. Then the
server parses it: ``COPY … FROM STDIN (FORMAT csv, HEADER true)`` into a temporary table
whose identity column is the line number (the header is line 1; a quoted field spanning
lines would shift the numbers after it, and is rejected anyway: no email, slug or role
holds a newline). A CSV the server cannot parse (a missing column, an unterminated quote)
is a ``UsageError`` carrying the server's own context, which names the line.

:data:`CLASSIFY` decides every row in one statement, into a second temporary table:
``insert`` (the user exists), ``insert, new user`` / ``insert, new profile`` (only with
``create_missing_users``), ``member`` (already a member: nothing to do, whatever the role)
or ``reject`` with its reason. Both tables are ``ON COMMIT DROP``.
"""

from __future__ import annotations

import contextlib
import csv as _csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg
import psycopg.errors as pgerr
from psycopg.rows import dict_row

from pgrunbooks.actions.data.common import EMAIL_PATTERN
from pgrunbooks.db import QUERY_MARKER
from pgrunbooks.errors import UsageError

HEADER = ("email", "organization", "role")
#: one line of email,organization,role never needs more; a 10 MB line is a wrong file.
MAX_LINE_BYTES = 64 * 1024
#: roles a bulk import may grant (an owner is made by add_organization, one at a time).
IMPORT_ROLES = ("admin", "member", "viewer")
COPY_CHUNK = 1 << 20
#: the classification sorts and hashes every row once: in memory, not in temporary files
#: (``SET LOCAL``: for this one transaction).
WORK_MEM = "64MB"

INSERTS = ("insert", "insert, new user", "insert, new profile")


@dataclass(frozen=True)
class CsvFile:
    """A checked file: its path, bytes, sha256 and number of data lines."""

    path: str
    data: bytes
    sha256: str
    lines: int


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_csv(path: Any) -> CsvFile:
    """Read and check ``path`` (see the module doc); :class:`UsageError` with the line number."""
    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise UsageError(f"csv must be the path of a CSV file, not {path!r}")
    file = Path(str(path)).expanduser()
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"csv {str(file)!r}: no such file") from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise UsageError(f"csv {str(file)!r} cannot be read: {exc.strerror or exc}") from None
    where = f"csv {file.name}"
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UsageError(f"{where}, line {_line_of(data, nul)}: a NUL byte: this is not a text file")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}, line {_line_of(data, exc.start)}: not UTF-8 (byte {data[exc.start]:#04x})",
                         hint="save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    lines = data.split(b"\n")
    if max(map(len, lines)) > MAX_LINE_BYTES:
        number = next(i for i, line in enumerate(lines, 1) if len(line) > MAX_LINE_BYTES)
        raise UsageError(f"{where}, line {number}: longer than {MAX_LINE_BYTES:,} bytes: not a list of memberships")
    first = lines[0].decode("utf-8").lstrip("\ufeff").rstrip("\r")
    header = tuple(c.strip().lower() for c in next(_csv.reader(io.StringIO(first)), []))
    if header != HEADER:
        raise UsageError(f"{where}, line 1: the header must be {','.join(HEADER)}, not {first[:200]!r}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a BOM (spreadsheets write one): COPY would read it as part of the first name
    body = data.rstrip(b"\r\n") + b"\n"
    return CsvFile(str(file), body, hashlib.sha256(data).hexdigest(), max(body.count(b"\n") - 1, 0))


STAGE = """
create temporary table pgrb_import_rows (
  line bigint generated always as identity (start with 2),
  email text, organization text, role text
) on commit drop
"""
ANALYZE = "analyze pg_temp.pgrb_import_rows"
# Session cursors mark every statement they execute; copy() is not execute(), so the marker is written here.
COPY_TEXT = "copy pg_temp.pgrb_import_rows (email, organization, role) from stdin (format csv, header true)"
COPY = COPY_TEXT + "\n" + QUERY_MARKER

CLASSIFY = """
create temporary table pgrb_import_checked on commit drop as
with s as (
  select r.line, nullif(pg_catalog.btrim(r.email), '') as email,
         pg_catalog.lower(pg_catalog.btrim(r.email)) collate "C" as email_key,
         nullif(pg_catalog.btrim(r.organization), '') as org_text,
         pg_catalog.lower(pg_catalog.btrim(r.role)) as role
    from pg_temp.pgrb_import_rows r
), o as (
  select s.*, coalesce(oi.id, os.id) as org_id, coalesce(oi.slug, os.slug) as org_slug
    from s
    left join public.organizations oi on oi.id::text = pg_catalog.lower(s.org_text)
    left join public.organizations os on os.slug = s.org_text
), p as (
  select pg_catalog.lower(pr.email) collate "C" as email_key, (pg_catalog.array_agg(pr.id))[1] as user_id,
         pg_catalog.count(*) as profiles
    from public.profiles pr
   where pg_catalog.lower(pr.email) collate "C" in (select s.email_key from s)
   group by 1
), a as (
  select pg_catalog.lower(u.email) collate "C" as email_key, (pg_catalog.array_agg(u.id))[1] as auth_id,
         pg_catalog.count(*) as auth_users
    from auth.users u
   where pg_catalog.lower(u.email) collate "C" in (select s.email_key from s)
   group by 1
), j as (
  select o.*, p.user_id, coalesce(p.profiles, 0) as profiles, a.auth_id, coalesce(a.auth_users, 0) as auth_users,
         pg_catalog.min(o.line) over (partition by o.email_key, coalesce(o.org_id::text, o.org_text) collate "C") as first_line,
         m.role as member_role
    from o
    left join p on p.email_key = o.email_key
    left join a on a.email_key = o.email_key
    left join public.org_users m on m.org_id = o.org_id and m.user_id = p.user_id
), c as (
  select j.*,
         case when j.email is null or j.email !~ %(email)s then 'malformed email'
              when j.org_id is null then 'unknown organization'
              when j.role is null or not (j.role = any(%(roles)s::text[])) then 'role not allowed'
              when j.first_line < j.line then 'duplicate of line ' || j.first_line
              when j.profiles > 1 or j.auth_users > 1 then 'ambiguous email: several users have it'
              when j.user_id is null and j.auth_id is null and not %(create)s then 'no such user'
              when j.user_id is null and not %(create)s then 'no profile for this auth user'
         end as reason
    from j
)
select c.line, c.email, c.email_key, c.org_text, c.org_id, c.org_slug, c.role, c.user_id, c.auth_id, c.member_role,
       case when c.reason is not null then 'reject'
            when c.member_role is not null then 'member'
            when c.user_id is not null then 'insert'
            when c.auth_id is not null then 'insert, new profile'
            else 'insert, new user' end as outcome,
       coalesce(c.reason, case when c.member_role is not null then 'already a member (' || c.member_role || ')' end)
         as reason
  from c
"""
SUMMARY = """
select coalesce(c.org_slug, c.org_text, '') as organization, c.outcome, pg_catalog.count(*) as rows,
       pg_catalog.string_agg(distinct c.role, ', ' order by c.role) as roles
  from pg_temp.pgrb_import_checked c
 group by 1, 2
 order by 1, 2
"""
REJECTS = """
select c.line, c.email, c.org_text as organization, c.role, c.reason
  from pg_temp.pgrb_import_checked c
 where c.outcome = 'reject'
 order by c.line
"""
NEW_USERS = """
select pg_catalog.count(distinct c.email_key) filter (where c.outcome = 'insert, new user') as users,
       pg_catalog.count(distinct c.email_key) filter (where c.outcome in ('insert, new user', 'insert, new profile'))
         as profiles
  from pg_temp.pgrb_import_checked c
"""


def copy_rows(cur: psycopg.Cursor, file: CsvFile) -> None:
    """COPY the file into the staging table; a CSV the server cannot parse is a :class:`UsageError`."""
    try:
        with cur.copy(COPY) as copy:
            view = memoryview(file.data)
            for start in range(0, len(view), COPY_CHUNK):
                copy.write(view[start:start + COPY_CHUNK])
    except (pgerr.BadCopyFileFormat, pgerr.DataException) as exc:  # SQLSTATE 22P04 and class 22
        where = getattr(exc.diag, "context", None) or ""
        raise UsageError(f"csv {Path(file.path).name} is not valid CSV: {exc.diag.message_primary} ({where.strip()})",
                         hint="each line: email,organization,role (quote a field holding a comma)") from None


def stage(cur: psycopg.Cursor, file: CsvFile, create_missing_users: bool) -> None:
    """Staging table, COPY, classification: the two temporary tables of the current transaction."""
    cur.execute("select set_config('work_mem', %s, true)", (WORK_MEM,))
    cur.execute(STAGE)
    copy_rows(cur, file)
    # A temporary table has no statistics until analysed: without them every join is planned for 1,000 rows.
    cur.execute(ANALYZE)
    cur.execute(CLASSIFY, {"email": EMAIL_PATTERN, "roles": list(IMPORT_ROLES),
                           "create": bool(create_missing_users)})


@contextlib.contextmanager
def scratch(session, timeouts: dict[str, str]) -> Iterator[psycopg.Cursor]:
    """A transaction that is always rolled back, with ``SET LOCAL`` timeouts, for a dry run's staging.

    PostgreSQL refuses ``CREATE TEMPORARY TABLE`` in a ``READ ONLY`` transaction, so on a
    read-only session this one transaction is opened read-write; it writes only its own
    temporary tables and ends in ``ROLLBACK`` whatever happens, so nothing persists.
    """
    conn = session.conn
    was = conn.read_only
    conn.read_only = False
    try:
        with conn.transaction(force_rollback=True), conn.cursor(row_factory=dict_row) as cur:
            cur.execute("select set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                        (timeouts["statement_timeout"], timeouts["lock_timeout"]))
            yield cur
    finally:
        conn.read_only = was
