"""Time for everything that decides: injectable so the example world can run on a frozen business date."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware datetime in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class BusinessDateClock:
    """Wall-clock time of day moved onto a fixed business date.

    The example world's records say "declined today"; pinning the date keeps those stories true on any day
    while time still advances, so timers, expiries and latency stay real.
    """

    def __init__(self, business_date: date) -> None:
        self.business_date = business_date
        real = datetime.now(UTC)
        self._offset = datetime.combine(business_date, real.time(), UTC) - real

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


class ManualClock:
    """A clock that moves only when told to: for tests and the simulator's simulated time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.combine(date(2026, 12, 3), time(9, 0), UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = moment
