"""A backup's files and a restored copy checked against the manifest; every discrepancy is a finding naming
its object.

* files: sha256 and size of every file (a tampered or truncated data file names its table);
* rows: count and ordered content hash per table (the method the manifest recorded);
* constraints identical, ``NOT VALID`` ones still not valid, and every validated foreign key
  proved by an anti-join (``pg_restore`` loads data before constraints, and a restore made with
  triggers off would not have checked them);
* sequences: at their backed-up value and at or above their column's max;
* RLS flags, policies, grants (``aclexplode``), SECURITY DEFINER functions with their
  ``search_path``, extensions, roles: identical;
* a tenant-isolation probe (:func:`tenant_probe`) on the copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from psycopg import sql

from pgrunbooks.backup import catalog, manifest as mf
from pgrunbooks.findings import Finding, Severity

CHECK_ID = "restore_test"

#: manifest section -> what its differences are called
_LABEL = {"roles": "role", "grants": "grants on", "rls": "row level security of", "policies": "policy",
          "definer_functions": "SECURITY DEFINER function", "extensions": "extension", "constraints": "constraint",
          "sequences": "sequence"}


def _critical(title: str, obj: str, detail: str = "", remediation: str = "", **data: Any) -> Finding:
    return Finding(CHECK_ID, Severity.CRITICAL, title, object=obj, detail=detail, remediation=remediation, data=data)


def verify_files(backup: Path | str, manifest: dict[str, Any]) -> list[Finding]:
    """Every file the manifest lists, with its size and sha256; extra files in ``data/`` are flagged too."""
    backup = Path(backup)
    out = []
    listed = set()
    for entry in manifest["files"]:
        path = backup / entry["path"]
        listed.add(entry["path"])
        what = f"the data of table {entry['table']}" if entry.get("table") else entry["path"]
        obj = entry.get("table") or entry["path"]
        if not path.is_file():
            out.append(_critical(f"backup file {entry['path']} ({what}) is missing", obj, file=entry["path"]))
            continue
        size = path.stat().st_size
        if size != entry["bytes"]:
            out.append(_critical(f"backup file {entry['path']} ({what}) is {size:,} bytes, the manifest says "
                                 f"{entry['bytes']:,}: truncated or tampered with", obj, file=entry["path"]))
        elif mf.sha256(path) != entry["sha256"]:
            out.append(_critical(f"backup file {entry['path']} ({what}) does not match its sha256: tampered with",
                                 obj, file=entry["path"]))
    data = backup / mf.DATA_DIR
    for path in sorted(data.iterdir()) if data.is_dir() else []:
        rel = path.relative_to(backup).as_posix()
        if rel not in listed:
            out.append(_critical(f"backup file {rel} is not in the manifest", rel, file=rel))
    return out


def verify_restored(cur, manifest: dict[str, Any], *, progress=None) -> list[Finding]:
    """Compare the database ``cur`` is connected to (a restored copy) with ``manifest``."""
    cur.execute("select set_config('row_security', 'off', true), set_config('search_path', 'pg_catalog', true)")
    findings = list(_rows(cur, manifest, progress))
    current = catalog.capture(cur)
    for section in catalog.SECTIONS:
        findings += _section(section, manifest["catalog"].get(section, []), current[section])
    findings += _foreign_keys(cur, current["constraints"])
    findings += _sequences_behind(cur, current["sequences"])
    return findings


def probe_keys(session) -> dict[str, Any]:
    """The ``tenant_isolation`` check on ``session``'s database: the keys and titles it flags
    (members seeing another organization's rows, ``anon`` seeing any, members missing their own)."""
    from pgrunbooks import checks

    found = checks.run_checks(session, ids=["tenant_isolation"])
    if any(f.severity in (Severity.SKIPPED, Severity.ERROR) for f in found):
        return {"ran": False, "reason": "; ".join(f.detail for f in found)[:500]}
    return {"ran": True, "flagged": {f.key: f.title for f in found if f.severity.rank >= Severity.WARNING.rank}}


def tenant_probe(conninfo: str, expected: dict[str, Any] | None = None) -> list[Finding]:
    """The tenant-isolation probe on the restored copy, against the source's (``expected``, from the
    manifest): a leak the copy has and the source had not, or the reverse, is critical; the same
    leaks as the source are one ``info`` finding (the source's own problem, not the restore's)."""
    from pgrunbooks.db import connect

    with connect(conninfo, runbook="backup/restore_test") as session:
        copy = probe_keys(session)
    if not copy["ran"]:
        return [Finding(CHECK_ID, Severity.INFO, "tenant-isolation probe not run on the restored copy",
                        object="tenant_isolation", detail=copy["reason"])]
    source = (expected or {}).get("flagged") if (expected or {}).get("ran") else None
    if source is None:  # no probe in the manifest: the copy's own result
        return [_critical(f"restored copy: {title}", key, section="tenant_isolation")
                for key, title in sorted(copy["flagged"].items())]
    out = [_critical(f"tenant isolation differs from the source: {title}", key, section="tenant_isolation")
           for key, title in sorted(copy["flagged"].items()) if key not in source]
    out += [_critical(f"tenant isolation differs from the source: the source flagged {key!r}, the copy does not",
                      key, section="tenant_isolation") for key in sorted(source) if key not in copy["flagged"]]
    if not out and source:
        out.append(Finding(CHECK_ID, Severity.INFO, f"tenant isolation identical to the source, including its "
                           f"{len(source)} known problem(s): fix them on the source (security audit)",
                           object="tenant_isolation", data={"flagged": sorted(source)}))
    return out


def _rows(cur, manifest: dict[str, Any], progress) -> Iterable[Finding]:
    cur.execute(mf.TABLES)
    present = {r["name"] for r in cur.fetchall()}
    for entry in manifest["tables"]:
        if progress is not None:
            progress(entry["name"])
        if entry["name"] not in present:
            yield _critical(f"table {entry['name']} is missing from the restored copy", entry["name"])
            continue
        got = mf.recompute(cur, entry)
        if got["rows"] != entry["rows"]:
            yield _critical(f"table {entry['name']} has {got['rows']:,} rows, the backup {entry['rows']:,}",
                            entry["name"], value=got["rows"], expected=entry["rows"])
        elif entry["method"] == "exact" and got["hash"] != entry["hash"]:
            yield _critical(f"table {entry['name']}: same row count, different content (ordered hash differs)",
                            entry["name"])
        elif entry["method"] == "sampled":
            bad = [s["start"] for s, g in zip(entry["samples"], got["samples"]) if s["hash"] != g["hash"]]
            if bad:
                yield _critical(f"table {entry['name']}: {len(bad)} of {len(entry['samples'])} sampled key ranges "
                                f"differ (first from key {bad[0]})", entry["name"], ranges=bad)


def _section(section: str, expected: list[dict], actual: list[dict]) -> list[Finding]:
    """Rows of one catalog section, grouped by their key: missing, extra or different."""
    key = catalog.SECTIONS[section][1]
    label = _LABEL[section]

    def grouped(rows):
        out: dict[str, list] = {}
        for row in rows:
            out.setdefault(row[key], []).append({k: v for k, v in row.items() if k != key})
        return out

    want, have = grouped(expected), grouped(actual)
    out = []
    for name in sorted(set(want) | set(have)):
        if name not in have:
            out.append(_critical(f"{label} {name} is missing from the restored copy", name, section=section))
        elif name not in want:
            if section == "roles":
                continue  # a scratch server has its own bootstrap roles; extra roles change no privilege here
            out.append(_critical(f"{label} {name} is in the restored copy but not in the backup", name,
                                 section=section))
        elif section == "sequences":
            continue  # values: checked by _sequence_values below
        elif _canon(want[name]) != _canon(have[name]):
            out.append(_grant_difference(name, want[name], have[name]) if section == "grants" else
                       _critical(f"{label} {name} differs from the backup", name, section=section,
                                 expected=want[name], actual=have[name]))
    if section == "sequences":
        out += _sequence_values(want, have)
    return out


def _canon(rows: list[dict]) -> list:
    return sorted(repr(sorted(r.items())) for r in rows)


def _grant_difference(obj: str, want: list[dict], have: list[dict]) -> Finding:
    def acl(rows):
        return {(r["grantee"], r["privilege"], r["grantable"]) for r in rows}

    lost, gained = sorted(acl(want) - acl(have)), sorted(acl(have) - acl(want))
    parts = [f"lost {g}:{p}" for g, p, _ in lost] + [f"gained {g}:{p}" for g, p, _ in gained]
    return _critical(f"grants on {obj} differ from the backup: {', '.join(parts)}", obj, section="grants",
                     lost=[list(x) for x in lost], gained=[list(x) for x in gained])


def _sequence_values(want: dict, have: dict) -> list[Finding]:
    out = []
    for name in sorted(set(want) & set(have)):
        w, h = want[name][0]["last_value"], have[name][0]["last_value"]
        if w is not None and (h is None or h < w):
            out.append(_critical(f"sequence {name} is at {h}, the backup had it at {w}", name, value=h, expected=w))
    return out


def _sequences_behind(cur, sequences: list[dict]) -> list[Finding]:
    """A sequence below its column's max hands out keys that already exist."""
    out = []
    for s in sequences:
        if not s["table_name"]:
            continue
        cur.execute(sql.SQL("select pg_catalog.max(t.{col})::bigint as top from {tbl} t").format(
            col=sql.Identifier(s["column_name"]), tbl=sql.Identifier(s["table_schema"], s["table_name"])))
        top = cur.fetchone()["top"]
        if top is not None and (s["last_value"] is None or s["last_value"] < top):
            column = f"{s['table_schema']}.{s['table_name']}.{s['column_name']}"
            out.append(_critical(
                f"sequence {s['sequence']} is at {s['last_value']}, behind max({column}) = {top}: the next insert "
                "collides", s["sequence"], value=s["last_value"], threshold=top,
                remediation=f"select pg_catalog.setval('{s['sequence']}', {top});"))
    return out


def _foreign_keys(cur, constraints: list[dict]) -> list[Finding]:
    """Anti-join every validated foreign key: rows whose parent is missing."""
    out = []
    for c in constraints:
        if c["type"] != "f" or not c["validated"]:
            continue
        child = sql.Identifier(c["schema_name"], c["table_name"])
        parent = sql.Identifier(c["ref_schema_name"], c["ref_table_name"])
        match = sql.SQL(" and ").join(
            sql.SQL("p.{} = c.{}").format(sql.Identifier(rc), sql.Identifier(cc))
            for cc, rc in zip(c["column_names"], c["ref_column_names"]))
        not_null = sql.SQL(" and ").join(sql.SQL("c.{} is not null").format(sql.Identifier(cc))
                                         for cc in c["column_names"])
        cur.execute(sql.SQL("select pg_catalog.count(*) as orphans from {child} c where {not_null} "
                            "and not exists (select from {parent} p where {match})").format(
            child=child, parent=parent, not_null=not_null, match=match))
        orphans = cur.fetchone()["orphans"]
        if orphans:
            out.append(_critical(f"foreign key {c['constraint']}: {orphans:,} rows reference a missing parent",
                                 c["constraint"], value=orphans))
    return out
