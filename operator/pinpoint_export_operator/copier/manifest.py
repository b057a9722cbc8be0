"""manifest.json and the one-line summary (pure builders).

The manifest holds no timestamps: it is a function of the run's objects alone, so a resumed or
repeated copy writes a byte-identical manifest. A manifest read back is trusted only if it is
exactly what `build_manifest` makes of its own records. Each file records its `lines` (the
newlines of its decoded content: one per endpoint); the totals add up those of the `.gz`
pieces. A manifest written before lines were counted has none, and is still valid.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

from pinpoint_export_operator.copier.exitcodes import clip

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
VERSION = 1
TERMINATION_LOG_LIMIT = 4096  # the kubelet keeps at most this much of a termination message


class CopierSummary(TypedDict, total=False):
    """The one-line JSON the copier ends with (its termination message), as the operator reads
    it: typed once so that mypy checks the writer and the reader against each other. A run
    that succeeded gives the counts; one that failed, `error` to `message`."""

    files: int
    bytes: int
    lines: int | None  # endpoints; None: not counted (older run)
    objects: int
    resumed: int
    alreadyComplete: bool
    seconds: float
    manifest: str
    error: str  # the failure's reason
    exitCode: int
    retryable: bool
    message: str


@dataclass(frozen=True)
class FileRecord:
    """One file of the run directory and the S3 object it came from."""

    name: str
    bytes: int
    sha256: str
    source: str  # the full S3 key
    etag: str
    decompressed_from: str | None = None  # for `.jsonl`: the `.gz` file it was decoded from
    lines: int | None = None  # newlines of the decoded content; None in older manifests

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "source": self.source,
            "etag": self.etag,
        }
        if self.decompressed_from is not None:
            entry["decompressedFrom"] = self.decompressed_from
        if self.lines is not None:
            entry["lines"] = self.lines
        return entry

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> FileRecord:
        return cls(
            entry["name"],
            entry["bytes"],
            entry["sha256"],
            entry["source"],
            entry["etag"],
            entry.get("decompressedFrom"),
            entry.get("lines"),
        )


def build_manifest(source_url: str, records: Iterable[FileRecord]) -> dict[str, Any]:
    files = sorted(records, key=lambda r: r.name)
    totals: dict[str, int] = {"files": len(files), "bytes": sum(r.bytes for r in files)}
    lines = [r.lines for r in files if r.decompressed_from is None]  # a .jsonl repeats its .gz
    if None not in lines:
        totals["lines"] = sum(n for n in lines if n is not None)
    return {
        "version": VERSION,
        "source": source_url,
        "files": [r.to_json() for r in files],
        "totals": totals,
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def parse_manifest(data: bytes, source_url: str) -> dict[str, Any] | None:
    """The manifest in `data` if it is a valid one of `source_url`'s run, else None."""
    try:
        manifest = json.loads(data)
        records = [FileRecord.from_json(entry) for entry in manifest["files"]]
        valid = manifest == build_manifest(source_url, records)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest if valid else None


def recorded_manifest(data: bytes) -> dict[str, Any] | None:
    """The manifest in `data` if it is a valid one of whatever run it names as its source."""
    try:
        source = json.loads(data).get("source")
    except (ValueError, AttributeError):
        return None
    return parse_manifest(data, source) if isinstance(source, str) else None


def pieces(manifest: dict[str, Any]) -> int:
    """The `.gz` objects a manifest records (each may have a decoded `.jsonl` beside it)."""
    return sum("decompressedFrom" not in entry for entry in manifest["files"])


def summary(
    manifest: dict[str, Any],
    *,
    objects: int,
    resumed: int,
    seconds: float,
    already_complete: bool = False,
) -> str:
    """The one-line JSON the operator reads from the termination message."""
    return _line(
        {
            "files": manifest["totals"]["files"],
            "bytes": manifest["totals"]["bytes"],
            "lines": manifest["totals"].get("lines"),
            "objects": objects,
            "resumed": resumed,
            "alreadyComplete": already_complete,
            "seconds": round(seconds, 3),
            "manifest": MANIFEST,
        }
    )


def failure(*, code: int, reason: str, message: str, retryable: bool, seconds: float) -> str:
    head: CopierSummary = {
        "error": reason,
        "exitCode": code,
        "retryable": retryable,
        "seconds": round(seconds, 3),
    }
    while True:  # cut the message until the line fits in the termination log
        line = _line({**head, "message": message})
        if len(line) <= TERMINATION_LOG_LIMIT:
            return line
        message = clip(message, len(message) // 2)


def _line(data: CopierSummary) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)
