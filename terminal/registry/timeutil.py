"""UTC time helpers: the injected clock, calendar-month arithmetic."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime; a naive value is taken to be UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def add_months(moment: datetime, months: int) -> datetime:
    """Same day and time `months` calendar months later, clamped to the month's last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else utc(moment).isoformat().replace("+00:00", "Z")
