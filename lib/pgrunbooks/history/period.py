"""Calendar months in UTC, as the monthly runbooks' ``month`` parameter names them (``YYYY-MM``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from pgrunbooks.errors import ParameterError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Month:
    """One calendar month; ``start``/``end`` are UTC instants, ``end`` exclusive."""

    year: int
    month: int

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return self.shift(1).start

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def shift(self, months: int) -> "Month":
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def back(self, count: int) -> list["Month"]:
        """The ``count`` months ending with this one, oldest first."""
        return [self.shift(-n) for n in range(count - 1, -1, -1)]

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def last_complete_month(today: date | None = None) -> Month:
    """The month before the current UTC one."""
    today = today or datetime.now(timezone.utc).date()
    return Month(today.year, today.month).shift(-1)


def parse_month(text: str | None, *, parameter: str = "month") -> Month:
    """``YYYY-MM`` → :class:`Month`; empty or None → the last complete month. Bad values exit 3."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return last_complete_month()
    match = _MONTH.match(text.strip()) if isinstance(text, str) else None
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise ParameterError(f"{parameter}={text!r} is not a month", hint="write it YYYY-MM, e.g. month=2026-03")
    month = Month(int(match.group(1)), int(match.group(2)))
    if month.start > datetime.now(timezone.utc):
        raise ParameterError(f"{parameter}={text!r} is in the future", hint="pick the current month or an earlier one")
    return month
