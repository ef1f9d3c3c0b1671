"""A clock tests set by hand (:class:`ManualClock`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from potrack.exceptions import ConfigurationError

__all__ = ["ManualClock"]


class ManualClock:
    """A clock that stands still until told otherwise: inject it where potrack asks for a clock.

    >>> from datetime import UTC, datetime
    >>> clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    >>> clock.advance(hours=2)
    >>> clock().isoformat()
    '2026-03-02T11:00:00+00:00'
    >>> clock.set(datetime(2026, 3, 5, 8, tzinfo=UTC))
    >>> clock().day
    5
    """

    def __init__(self, start: datetime) -> None:
        self.now = self._aware(start)

    @staticmethod
    def _aware(when: datetime) -> datetime:
        if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
            raise ConfigurationError(f"a clock keeps timezone-aware datetimes, got {when!r}")
        return when

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        """Move the clock to ``when`` (forwards or backwards: a test may need either)."""
        self.now = self._aware(when)

    def advance(self, **delta: float) -> None:
        """Move the clock on by a :class:`~datetime.timedelta` given as keywords."""
        self.now = self.now + timedelta(**delta)
