"""RFC 3339 timestamps as Kubernetes writes them: UTC, whole seconds, a `Z` suffix.

Status fields and conditions hold strings like `2026-11-28T19:06:28Z`; decisions compare
datetimes. These three functions are the only conversions between the two.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse(value: str) -> datetime:
    """An aware UTC datetime from an RFC 3339 string (`Z` or an offset)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def format(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> str:
    return format(datetime.now(UTC))
