"""Deterministic synthetic endpoints, generated on demand from (seed, index), and their NDJSON.

A seeded block stores four numbers instead of its endpoints, so seeding a million endpoints is
instant and an export streams them with bounded memory. Each endpoint is drawn from a hash of
(seed, index) and has the fields of Pinpoint's EndpointResponse with varied, plausible values:
named e-mail addresses, phone numbers of the endpoint's country, device tokens, city locations
with coordinates and postal codes, device demographics, dates, user ids and attributes,
metrics, the id of the batch request that wrote it. Gzip level 6 shrinks their NDJSON (`ndjson`,
what export pieces hold) about 9:1, as real exports about 10:1 (the unit tests hold it between
6:1 and 14:1): decoding a piece costs what it costs on a real one. The categorical fields
(channel, tier, plan, interests, country, platform, make, model, app version, metrics) are what
segments select on.
"""

from __future__ import annotations

import base64
import functools
import json
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

Endpoint = dict[str, Any]
_T = TypeVar("_T")

_EPOCH = 1_640_995_200  # 2022-01-01T00:00:00Z: dates depend on (seed, index), not on the clock
_STEP_MS = 60_000  # endpoints were created in index order, about one a minute
_MASK = (1 << 64) - 1
CHANNELS = ("EMAIL",) * 11 + ("SMS",) * 7 + ("GCM", "APNS")  # 55%, 35%, 5%, 5%
TIERS = ("bronze", "silver", "gold")
INTERESTS = ("sports", "music", "travel", "food", "books", "games")
_INTEREST_SETS = [sorted({a, b}) for a in INTERESTS for b in INTERESTS]
PLANS = ("free", "pro", "enterprise")
SOURCES = ("web", "ios", "android", "import", "referral")
NEWSLETTERS = ("weekly", "weekly", "monthly", "daily", "none")
_APP_CHANNEL = {"ios": "APNS", "android": "GCM"}  # sign-ups in a mobile app
FIRST_NAMES = (
    "james", "mary", "robert", "patricia", "john", "jennifer", "michael", "linda", "david",
    "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
    "lukas", "anna", "leon", "marie", "hugo", "louise", "jules", "chloe", "haruto", "yui", "sota",
    "hina", "miguel", "helena", "arthur", "alice", "aarav", "saanvi", "vivaan", "ananya", "oliver",
    "amelia", "noah", "isla", "mateo", "sofia", "emma", "liam", "lucas", "mia",
)  # fmt: skip
LAST_NAMES = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "mueller", "schmidt", "schneider", "fischer", "weber", "martin", "bernard",
    "dubois", "thomas", "robert", "sato", "suzuki", "takahashi", "tanaka", "watanabe", "silva",
    "santos", "oliveira", "souza", "pereira", "sharma", "patel", "singh", "kumar", "gupta",
    "taylor", "wilson", "evans", "walker", "wright", "lee", "nguyen", "kim", "chen", "lopez",
)  # fmt: skip
DOMAINS = (
    "gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com",
    "icloud.com", "aol.com", "proton.me", "example.com", "mail.example.org", "corp.example.net",
)  # fmt: skip
# Country, calling code, locale, then (city, region, postal code prefix, latitude, longitude,
# time zone) for a few of its cities.
_Country = tuple[str, str, str, tuple[tuple[str, str, str, float, float, str], ...]]
_COUNTRIES: tuple[_Country, ...] = (
    ("US", "1", "en_US", (
        ("New York", "NY", "100", 40.7128, -74.0060, "America/New_York"),
        ("Los Angeles", "CA", "900", 34.0522, -118.2437, "America/Los_Angeles"),
        ("Chicago", "IL", "606", 41.8781, -87.6298, "America/Chicago"),
        ("Houston", "TX", "770", 29.7604, -95.3698, "America/Chicago"),
        ("Seattle", "WA", "981", 47.6062, -122.3321, "America/Los_Angeles"),
        ("Miami", "FL", "331", 25.7617, -80.1918, "America/New_York"),
        ("Denver", "CO", "802", 39.7392, -104.9903, "America/Denver"),
    )),
    ("DE", "49", "de_DE", (
        ("Berlin", "BE", "10", 52.5200, 13.4050, "Europe/Berlin"),
        ("München", "BY", "80", 48.1351, 11.5820, "Europe/Berlin"),
        ("Hamburg", "HH", "20", 53.5511, 9.9937, "Europe/Berlin"),
        ("Köln", "NW", "50", 50.9375, 6.9603, "Europe/Berlin"),
    )),
    ("FR", "33", "fr_FR", (
        ("Paris", "IDF", "75", 48.8566, 2.3522, "Europe/Paris"),
        ("Lyon", "ARA", "69", 45.7640, 4.8357, "Europe/Paris"),
        ("Marseille", "PAC", "13", 43.2965, 5.3698, "Europe/Paris"),
    )),
    ("JP", "81", "ja_JP", (
        ("Tokyo", "13", "1", 35.6762, 139.6503, "Asia/Tokyo"),
        ("Osaka", "27", "5", 34.6937, 135.5023, "Asia/Tokyo"),
        ("Sapporo", "01", "0", 43.0618, 141.3545, "Asia/Tokyo"),
    )),
    ("BR", "55", "pt_BR", (
        ("São Paulo", "SP", "01", -23.5505, -46.6333, "America/Sao_Paulo"),
        ("Rio de Janeiro", "RJ", "20", -22.9068, -43.1729, "America/Sao_Paulo"),
        ("Brasília", "DF", "70", -15.7975, -47.8919, "America/Sao_Paulo"),
    )),
    ("IN", "91", "en_IN", (
        ("Mumbai", "MH", "400", 19.0760, 72.8777, "Asia/Kolkata"),
        ("Bengaluru", "KA", "560", 12.9716, 77.5946, "Asia/Kolkata"),
        ("Delhi", "DL", "110", 28.7041, 77.1025, "Asia/Kolkata"),
    )),
    ("GB", "44", "en_GB", (
        ("London", "ENG", "SW", 51.5074, -0.1278, "Europe/London"),
        ("Manchester", "ENG", "M", 53.4808, -2.2426, "Europe/London"),
        ("Edinburgh", "SCT", "EH", 55.9533, -3.1883, "Europe/London"),
    )),
)  # fmt: skip
COUNTRIES = tuple(country[0] for country in _COUNTRIES)
# Devices of the push channels (and of addresses given in the mobile apps): platform, its
# versions, and (make, model) pairs.
_DEVICES: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "GCM": ("android", ("12", "13", "14", "15"), (
        ("Google", "Pixel 8"), ("Google", "Pixel 7a"), ("samsung", "SM-S918B"),
        ("samsung", "SM-A546B"), ("Xiaomi", "23049PCD8G"), ("OnePlus", "CPH2449"),
    )),
    "APNS": ("ios", ("16.7.8", "17.4.1", "17.5.1", "18.0"), (
        ("Apple", "iPhone15,2"), ("Apple", "iPhone14,5"), ("Apple", "iPhone16,1"),
        ("Apple", "iPad13,18"),
    )),
}  # fmt: skip


def _mix(x: int) -> int:
    """splitmix64: a fast, well-spread hash of the index."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@functools.lru_cache(maxsize=1024)
def _day(day: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(_EPOCH + day * 86_400))


def _date(offset_ms: int) -> str:
    """The ISO date `offset_ms` milliseconds after the epoch (strftime per date is too slow)."""
    second, ms = divmod(offset_ms, 1000)
    day, second = divmod(second, 86_400)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{_day(day)}{hour:02d}:{minute:02d}:{second:02d}.{ms:03d}Z"


def _uuid(a: int, b: int) -> str:
    """A version-4 UUID from two 64-bit hashes."""
    a = (a & ~0xF000) | 0x4000
    b = (b & 0x3FFFFFFFFFFFFFFF) | 0x8000000000000000
    text = f"{a:016x}{b:016x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class _Draws:
    """Independent choices drawn from 320 hash bits of (seed, index), no bit used twice (an
    endpoint draws about 200)."""

    def __init__(self, seed: int, n: int) -> None:
        h = _mix(seed * 1_000_003 + n)
        self.bits = h
        for _ in range(4):
            h = _mix(h)
            self.bits = self.bits << 64 | h

    def below(self, bound: int) -> int:
        self.bits, value = divmod(self.bits, bound)
        return value

    def pick(self, choices: Sequence[_T]) -> _T:
        return choices[self.below(len(choices))]

    def token(self, size: int) -> bytes:
        """`size` pseudo-random bytes (a device token): hashes of the bits not drawn yet."""
        h, out = self.bits, []
        for _ in range(0, size, 8):
            h = _mix(h)
            out.append(h.to_bytes(8, "little"))
        return b"".join(out)[:size]


def make_endpoint(application_id: str, endpoint_id: str, seed: int, n: int) -> Endpoint:
    """Endpoint number `n` of a seed: the export's fields in their order (storage.EXPORT_FIELDS),
    with CohortId (as GetEndpoint computes it) and RequestId among them."""
    draw = _Draws(seed, n)
    channel = draw.pick(CHANNELS)
    country, calling_code, locale, cities = draw.pick(_COUNTRIES)
    city, region, postal, latitude, longitude, timezone = draw.pick(cities)
    first, last = draw.pick(FIRST_NAMES), draw.pick(LAST_NAMES)
    if channel == "EMAIL":
        number = f"{draw.below(100):02d}" if draw.below(2) else ""  # a birth year, say
        address = f"{first}{draw.pick('._')}{last}{number}@{draw.pick(DOMAINS)}"
    elif channel == "SMS":
        address = f"+{calling_code}{draw.below(9_000_000_000) + 1_000_000_000}"
    elif channel == "GCM":  # an FCM registration token: an instance id, then a long secret
        token = base64.urlsafe_b64encode(draw.token(117)).decode()
        address = f"{token[:22]}:APA91b{token[22:156]}"
    else:  # an APNs device token
        address = draw.token(32).hex()
    user: dict[str, Any] = {}
    if draw.below(4):
        user = {
            "UserAttributes": {
                "FirstName": [first.capitalize()],
                "LastName": [last.capitalize()],
                "Plan": [draw.pick(PLANS)],
            },
            "UserId": f"user-{draw.below(10_000_000):07d}",
        }
    created = n * _STEP_MS + draw.below(_STEP_MS)
    effective = created  # never updated since, or updated up to 180 days later
    if draw.below(2):
        effective += draw.below(180 * 86_400_000)
    source = draw.pick(SOURCES)
    demographic: dict[str, Any] = {"Locale": locale, "Timezone": timezone}
    # A push endpoint is a device; an address given in a mobile app comes with the app's device.
    device = _DEVICES.get(channel) or _DEVICES.get(_APP_CHANNEL.get(source, ""))
    if device is not None:
        platform, versions, models = device
        make, model = draw.pick(models)
        demographic = {
            "AppVersion": f"{2 + draw.below(3)}.{draw.below(12)}.{draw.below(4)}",
            "Locale": locale,
            "Make": make,
            "Model": model,
            "Platform": platform,
            "PlatformVersion": draw.pick(versions),
            "Timezone": timezone,
        }
    endpoint: Endpoint = {
        "ChannelType": channel,
        "Address": address,
        "EndpointStatus": "INACTIVE" if draw.below(20) == 0 else "ACTIVE",
        "OptOut": "ALL" if draw.below(10) == 0 else "NONE",
        "EffectiveDate": _date(effective),
        "User": user,
        "ApplicationId": application_id,
        "Id": endpoint_id,
        "CreationDate": _date(created),
        # Pinpoint buckets endpoints into 100 cohorts by a hash of the id, as GetEndpoint does.
        "CohortId": str(zlib.crc32(endpoint_id.encode()) % 100),
        "Attributes": {
            "Tier": [draw.pick(TIERS)],
            "Interests": list(draw.pick(_INTEREST_SETS)),
            "SignupSource": [source],
            "Newsletter": [draw.pick(NEWSLETTERS)],
            "Language": [locale[:2]],
            "MarketingConsent": ["false" if draw.below(4) == 0 else "true"],
        },
        "Demographic": demographic,
    }
    located = draw.below(3)  # 0: no location; 1: the city's; 2: the device's coordinates too
    if located:
        location: dict[str, Any] = {"City": city, "Country": country}
        if located == 2:
            location["Latitude"] = round(latitude + (draw.below(4001) - 2000) / 10_000, 4)
            location["Longitude"] = round(longitude + (draw.below(4001) - 2000) / 10_000, 4)
        location.update(PostalCode=f"{postal}{draw.below(1000):03d}", Region=region)
        endpoint["Location"] = location
    if draw.below(2):
        endpoint["Metrics"] = {
            "sessions": float(draw.below(100)),
            "purchases": float(draw.below(12)),
        }
    endpoint["RequestId"] = _request_id(seed, n // 100)
    return endpoint


@functools.lru_cache(maxsize=256)
def _request_id(seed: int, batch: int) -> str:
    """The request that last wrote an endpoint: a batch import writes up to 100 at once."""
    h = _mix(seed * 1_000_003 + batch + (1 << 40))
    return _uuid(h, _mix(h))


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def ndjson(endpoints: Iterable[Endpoint]) -> bytes:
    """Endpoints as an export piece holds them: one compact JSON object a line, UTF-8."""
    return "".join(_encode(e) + "\n" for e in endpoints).encode()


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
