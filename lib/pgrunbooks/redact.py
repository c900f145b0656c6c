"""Keep passwords out of every artifact: notebooks, HTML, logs, errors and console output.

Two mechanisms: known secrets (registered when a target's DSN is read) are replaced
wherever they appear, and password-shaped fragments of connection strings are masked
even when they were never registered.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "********"

_lock = threading.Lock()
_secrets: set[str] = set()

# key=value conninfo (password=..., quoted or not) and URI userinfo (scheme://user:pass@host).
_CONNINFO_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;'\"]+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)([^@/\s]+)(@)", re.IGNORECASE)

# SQL text (CREATE/ALTER ROLE/USER … [ENCRYPTED] PASSWORD <literal>): every literal form PostgreSQL
# accepts, dollar-quoted ($$…$$, $tag$…$tag$), escape strings (E'…', backslash escapes), Unicode
# strings (U&'…') and plain '…' ('' inside), with or without a space after the keyword. A literal
# cut off by pg_stat_activity's query length is masked to the end of the text.
_SQL_PASSWORD = re.compile(
    r"(\bpassword\s*)"
    r"(?:(?P<dollar>\$(?:[a-z_][a-z0-9_]*)?\$).*?(?:(?P=dollar)|\Z)"
    r"|e'(?:[^'\\]|\\.|'')*(?:'|\Z)"
    r"|(?:u&)?'(?:[^']|'')*(?:'|\Z))",
    re.IGNORECASE | re.DOTALL,
)


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`redact` masks it anywhere it shows up."""
    if secret and len(secret) >= 3:
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and connection-string passwords masked."""
    if not text:
        return text
    text = _URI_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    text = _CONNINFO_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def redact_sql(text: str | None) -> str:
    """:func:`redact` plus the password literal of any role statement in ``text`` (query text shown to people)."""
    masked = _SQL_PASSWORD.sub(lambda m: f"{m.group(1)}'{MASK}'", text or "")
    return redact(masked)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_logging_filter(logger: logging.Logger | None = None) -> None:
    """Attach :class:`RedactingFilter` to ``logger`` (root by default) and its handlers."""
    logger = logger or logging.getLogger()
    flt = RedactingFilter()
    logger.addFilter(flt)
    for handler in logger.handlers:
        handler.addFilter(flt)
