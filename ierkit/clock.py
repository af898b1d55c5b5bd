"""One clock: what "as of" means, UTC, Marketing Cloud's time zone and the sync grace period.

Times are UTC inside ierkit; a naive ``datetime`` (and a naive column, see ``ierkit.schema``) is
UTC by convention. Zones are converted at the edges, where a person reads or types a time.

What "as of" means, everywhere (notebooks, commands, reports, diagnosis, checks):

- an **instant** is that instant (``2026-11-20T10:30``, or an aware ``datetime``);
- a **report date** (``2026-11-20``, or a ``date``) means the end of that day in the report's
  time zone: everything up to the next midnight there;
- **nothing given** means the source's own instant: the instant a frozen local org describes
  (the demo's generation instant, the moment a snapshot was pulled, else its last change to a
  send or IER) and now for a live org (``ierkit.orgs.Org.data_as_of``).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Final

from ierkit.errors import IerkitError

#: The zone every instant inside ierkit is in.
UTC: Final = dt.UTC

#: The report time zone when none is given.
DEFAULT_TIME_ZONE: Final = "UTC"

#: Marketing Cloud keeps its system time in Central Standard Time all year, without daylight
#: saving (Salesforce Help, "Marketing Cloud time zone"): UTC-6. The POSIX zone name inverts the
#: sign: ``Etc/GMT+6`` is six hours behind UTC.
MC_TIME_ZONE: Final = "Etc/GMT+6"

#: How long after a send a missing IER may still be on its way. Marketing Cloud makes 99% of
#: events visible within 60 minutes and the Connect sync then runs hourly, so anything younger
#: than two hours is "still syncing", not "missing".
SYNC_GRACE: Final = dt.timedelta(hours=2)


class ClockError(IerkitError, ValueError):
    """A date, time or time zone that ierkit cannot read."""


def to_utc(instant: dt.datetime) -> dt.datetime:
    """The same instant in UTC; a naive ``datetime`` is read as UTC (ierkit's convention)."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def now() -> dt.datetime:
    """The current instant, in UTC."""
    return dt.datetime.now(UTC)


def time_zone(name: str) -> dt.tzinfo:
    """The zone named ``name`` (an IANA name such as ``America/Chicago``, or ``UTC``).

    Raises:
        ClockError: When the name is not a known time zone.
    """
    if name.strip().upper() == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ClockError(
            f"time zone {name!r} is not an IANA zone name such as 'America/Chicago' or 'UTC'"
        ) from None


def end_of_day(day: dt.date, *, zone: str = DEFAULT_TIME_ZONE) -> dt.datetime:
    """The instant a report dated ``day`` describes: the next midnight in ``zone``, in UTC."""
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=time_zone(zone))
    return midnight.astimezone(UTC)


def day_of(instant: dt.datetime, *, zone: str = DEFAULT_TIME_ZONE) -> dt.date:
    """The calendar day ``instant`` falls on in ``zone``."""
    return to_utc(instant).astimezone(time_zone(zone)).date()


def parse_as_of(
    value: str | dt.date | dt.datetime | None, *, name: str = "as_of"
) -> dt.date | dt.datetime | None:
    """A report date, an instant, or None (not given), from a parameter or command-line value.

    Args:
        value: ``YYYY-MM-DD`` or a ``date`` (a report date); ISO text with a time or a
            ``datetime`` (an instant, UTC when it names no zone); empty or None (not given).
        name: The parameter's name, for the error message.

    Returns:
        A ``date``, a UTC ``datetime``, or None.

    Raises:
        ClockError: When the text is neither a date nor a date and time.
    """
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, dt.date):
        return value
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    if len(text) == 10:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ClockError(f"{name}: {text!r} is not a date of the form YYYY-MM-DD") from None
    try:
        return to_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise ClockError(
            f"{name}: {text!r} is not a date (YYYY-MM-DD) or date and time (YYYY-MM-DDTHH:MM)"
        ) from None


def as_of_instant(value: dt.date | dt.datetime, *, zone: str = DEFAULT_TIME_ZONE) -> dt.datetime:
    """The instant an as-of value means: an instant is itself, a date is the end of that day."""
    if isinstance(value, dt.datetime):
        return to_utc(value)
    return end_of_day(value, zone=zone)
