"""Map S3 keys to safe file names inside the run directory (pure).

The run directory is flat: every key becomes one file name, never a path. With no
subdirectories there is nothing to traverse, so `..`, absolute keys and planted directory
symlinks have nothing to act on. A name is built from the key relative to the run prefix:

- `/`-separated segments that are empty, `.` or `..` are dropped, the rest joined with `_`;
- every character outside `[A-Za-z0-9._=+-]` becomes `_` (control characters, backslashes,
  spaces, every non-ASCII character, so no Unicode look-alikes or normalisation tricks);
- a name never starts with `.` (no hidden files);
- a stem longer than MAX_STEM is cut and marked with a hash of the key, so that every output
  name plus `.part` fits in one 255-byte path component;
- keys whose names would collide all get `~<hash of the key>`: `~` never survives sanitising,
  so a hashed name cannot collide with a plain one, and the result does not depend on order.

Each key yields two names, `<stem>.gz` and its decompressed `<stem>.jsonl`; both are reserved
whether or not `--decompress` is used, so the mapping never depends on flags.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pinpoint_export_operator.copier.exitcodes import UnmappableKeys

GZ = ".gz"
PLAIN = ".jsonl"
PART = ".part"
MAX_NAME = 255  # bytes in one path component on Linux filesystems
HASH_CHARS = 16
MAX_STEM = 200  # so the longest output, `<stem>.jsonl.part`, fits in MAX_NAME

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclass(frozen=True)
class LocalNames:
    """The files one object becomes."""

    gz: str
    plain: str

    @property
    def both(self) -> tuple[str, str]:
        return (self.gz, self.plain)


def is_gz_key(relative_key: str) -> bool:
    """Pinpoint's pieces end in `.gz`; everything else in the prefix is a marker."""
    return relative_key.endswith(GZ)


def _key_hash(relative_key: str) -> str:
    data = relative_key.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


def sanitized_stem(relative_key: str) -> str:
    """The name of a `.gz` key without `.gz`, before any hashing (may exceed MAX_STEM)."""
    segments = [s for s in relative_key.split("/") if s not in ("", ".", "..")]
    flat = _UNSAFE.sub("_", "_".join(segments))
    stem = flat.removesuffix(GZ)
    return "_" + stem if stem == "" or stem.startswith(".") else stem


def _hashed(stem: str, relative_key: str) -> str:
    marker = "~" + _key_hash(relative_key)
    return stem[: MAX_STEM - len(marker)] + marker


def names_for(stem: str) -> LocalNames:
    plain = stem if stem.endswith(PLAIN) else stem + PLAIN
    return LocalNames(gz=stem + GZ, plain=plain)


def plan_names(relative_keys: Iterable[str]) -> dict[str, LocalNames]:
    """Distinct, safe local names for each `.gz` key relative to the run prefix."""
    keys = sorted(set(relative_keys))
    stems = {key: sanitized_stem(key) for key in keys}
    claims: defaultdict[str, set[str]] = defaultdict(set)
    for key, stem in stems.items():
        for name in names_for(stem).both:
            claims[name].add(key)
    contested = {key for owners in claims.values() if len(owners) > 1 for key in owners}
    plan = {
        key: names_for(_hashed(stem, key) if key in contested or len(stem) > MAX_STEM else stem)
        for key, stem in stems.items()
    }
    _check_distinct(plan)
    return plan


def _check_distinct(plan: dict[str, LocalNames]) -> None:
    # Only a full collision of the key hashes (a crafted attack on 64 bits) ends up here.
    owner: dict[str, str] = {}
    for key, names in plan.items():
        for name in names.both:
            if name in owner:
                raise UnmappableKeys(f"keys {owner[name]!r} and {key!r} both map to {name!r}")
            owner[name] = key
