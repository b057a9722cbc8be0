"""Cron schedules and time zones: when a PinpointExportSchedule's runs are due.

Time zones and daylight saving come from cronsim (Debian cron's rules) over zoneinfo:
- a fixed minute and hour ('30 2 * * *', and the @daily family) that a spring-forward gap
  skips runs at the end of the gap (03:00 in Europe/Berlin on the last Sunday of March), once;
- the same in a repeated autumn hour runs once, at its first occurrence (summer time);
- '*' in the minute or hour field follows real time: '0 * * * *' runs twice in the repeated
  hour, and not in the skipped one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MAX_MISSED = 100  # CronJob's threshold for "too many missed start times"
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class InvalidSpec(ValueError):
    """A schedule or time zone that passed the API server's checks but cannot be used."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Cron:
    expression: str  # five fields, as cronsim reads them
    zone: tzinfo

    @classmethod
    def parse(cls, schedule: str, time_zone: str | None) -> Cron:
        expression = MACROS.get(schedule.strip(), schedule)
        # '?' (day fields) means '*' in Kubernetes' cron dialect; cronsim does not know it.
        expression = " ".join(expression.split()).replace("?", "*")
        if len(expression.split()) != 5:
            raise InvalidSpec("InvalidSchedule", f"schedule {schedule!r}: not five cron fields")
        try:
            CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as error:
            raise InvalidSpec("InvalidSchedule", f"schedule {schedule!r}: {error}") from None
        return cls(expression, _zone(time_zone))

    def after(self, moment: datetime) -> Iterator[datetime]:
        """The scheduled times strictly after `moment`, in UTC, increasing."""
        for time in CronSim(self.expression, moment.astimezone(self.zone)):
            # cronsim steps wall-clock time for fixed hours, so starting inside a repeated hour
            # can yield the first occurrence of a time that is already past: skip it.
            if (utc := time.astimezone(UTC)) > moment:
                yield utc

    def next(self, moment: datetime) -> datetime | None:
        return next(self.after(moment), None)


def _zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSpec(
            "InvalidTimeZone",
            f"timeZone {name!r} is not in the operator's time zone database: nothing is "
            "scheduled until it names a known IANA zone, e.g. Europe/Berlin",
        ) from None


def most_recent(cron: Cron, after: datetime, now: datetime) -> tuple[datetime | None, bool]:
    """The latest scheduled time in (after, now], and whether more than MAX_MISSED fall there."""
    times: list[datetime] = []
    for time in cron.after(after):
        if time > now or len(times) > MAX_MISSED:
            break
        times.append(time)
    if len(times) <= MAX_MISSED:
        return (times[-1] if times else None), False
    # Too many to walk through (a clock off by years would take forever): look back from now
    # over growing windows, as CronJob does from its estimate of the interval.
    window = max(times[1] - times[0], timedelta(minutes=1)) * 2
    while True:
        latest = None
        for time in cron.after(max(after, now - window)):
            if time > now:
                break
            latest = time
        if latest is not None:
            return latest, True
        window *= 4
