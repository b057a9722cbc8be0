"""Deterministic synthetic endpoints, generated on demand from (seed, index).

A seeded block stores four numbers instead of its endpoints, so seeding a million endpoints is
instant and an export streams them with bounded memory. Fields vary with a hash of the index so
that segments (channel, attributes, user attributes, country, platform, metrics) select subsets.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Endpoint = dict[str, Any]

_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z: dates depend on the index only, not on the clock
_MASK = (1 << 64) - 1
CHANNELS = ("EMAIL", "EMAIL", "EMAIL", "EMAIL", "SMS", "SMS", "SMS", "GCM", "APNS", "EMAIL")
TIERS = ("bronze", "silver", "gold")
INTERESTS = ("sports", "music", "travel", "food", "books", "games")
_INTEREST_SETS = [sorted({a, b}) for a in INTERESTS for b in INTERESTS]
PLANS = ("free", "pro", "enterprise")
COUNTRIES = ("US", "DE", "FR", "JP", "BR", "IN", "GB")
PLATFORMS = {"GCM": ("android", "Pixel 8", "Google"), "APNS": ("ios", "iPhone15,2", "Apple")}


def _mix(x: int) -> int:
    """splitmix64: a fast, well-spread hash of the index."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@functools.lru_cache(maxsize=64)
def _day(day: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(_EPOCH + day * 86_400))


def _date(offset: int) -> str:
    """The ISO date `offset` seconds after the epoch (strftime per endpoint is too slow)."""
    day, second = divmod(offset, 86_400)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{_day(day)}{hour:02d}:{minute:02d}:{second:02d}.000Z"


def make_endpoint(application_id: str, endpoint_id: str, seed: int, n: int) -> Endpoint:
    """Endpoint number `n` of a seed, with the export's fields in the real export's key order."""
    h = _mix(seed * 1_000_003 + n)
    channel = CHANNELS[h % len(CHANNELS)]
    if channel == "EMAIL":
        address = f"user{n}@example.com"
    elif channel == "SMS":
        address = f"+1555{n % 10_000_000:07d}"
    else:
        address = f"{h:016x}{n:08x}"
    user: dict[str, Any] = {}
    if (h >> 8) % 4:
        user = {"UserId": f"user-{n // 2}", "UserAttributes": {"Plan": [PLANS[(h >> 10) % 3]]}}
    date = _date(n)
    endpoint: Endpoint = {
        "ChannelType": channel,
        "Address": address,
        "EndpointStatus": "INACTIVE" if (h >> 14) % 20 == 0 else "ACTIVE",
        "OptOut": "ALL" if (h >> 19) % 10 == 0 else "NONE",
        "EffectiveDate": date,
        "User": user,
        "ApplicationId": application_id,
        "Id": endpoint_id,
        "CreationDate": date,
        "Attributes": {
            "Tier": [TIERS[(h >> 24) % 3]],
            "Interests": list(_INTEREST_SETS[(h >> 28) % 36]),
        },
    }
    platform = PLATFORMS.get(channel)
    if platform is not None:
        endpoint["Demographic"] = {
            "Platform": platform[0],
            "Model": platform[1],
            "Make": platform[2],
            "AppVersion": f"1.{(h >> 36) % 5}",
            "Locale": "en_US",
            "Timezone": "America/New_York",
        }
    if (h >> 40) % 3:
        endpoint["Location"] = {"Country": COUNTRIES[(h >> 42) % len(COUNTRIES)]}
    if (h >> 46) % 2:
        endpoint["Metrics"] = {"sessions": float((h >> 48) % 100)}
    return endpoint


@dataclass(frozen=True)
class SyntheticBlock:
    """Endpoints `<prefix><n>` for n in [start, start + count) of one application."""

    application_id: str
    seed: int
    start: int
    count: int
    prefix: str

    def ids(self) -> Iterator[str]:
        return (f"{self.prefix}{n}" for n in range(self.start, self.start + self.count))

    def index(self, endpoint_id: str) -> int | None:
        """`n` if `endpoint_id` belongs to this block."""
        if not endpoint_id.startswith(self.prefix):
            return None
        digits = endpoint_id[len(self.prefix) :]
        if not digits.isdigit():
            return None
        n = int(digits)
        if str(n) != digits or not self.start <= n < self.start + self.count:
            return None
        return n

    def endpoint(self, n: int) -> Endpoint:
        return make_endpoint(self.application_id, f"{self.prefix}{n}", self.seed, n)

    def __iter__(self) -> Iterator[Endpoint]:
        app, seed, prefix = self.application_id, self.seed, self.prefix
        for n in range(self.start, self.start + self.count):
            yield make_endpoint(app, f"{prefix}{n}", seed, n)
