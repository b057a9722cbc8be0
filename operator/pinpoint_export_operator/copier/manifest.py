"""manifest.json and the one-line summary (pure builders).

The manifest holds no timestamps: it is a function of the run's objects alone, so a resumed or
repeated copy writes a byte-identical manifest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
VERSION = 1
TERMINATION_LOG_LIMIT = 4096  # the kubelet keeps at most this much of a termination message


@dataclass(frozen=True)
class FileRecord:
    """One file of the run directory and the S3 object it came from."""

    name: str
    bytes: int
    sha256: str
    source: str  # the full S3 key
    etag: str
    decompressed_from: str | None = None  # for `.jsonl`: the `.gz` file it was decoded from

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
        return entry


def build_manifest(source_url: str, records: Iterable[FileRecord]) -> dict[str, Any]:
    files = sorted(records, key=lambda r: r.name)
    return {
        "version": VERSION,
        "source": source_url,
        "files": [r.to_json() for r in files],
        "totals": {"files": len(files), "bytes": sum(r.bytes for r in files)},
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def summary(manifest: dict[str, Any], *, objects: int, resumed: int, seconds: float) -> str:
    """The one-line JSON the operator reads from the termination message."""
    return _line(
        {
            "files": manifest["totals"]["files"],
            "bytes": manifest["totals"]["bytes"],
            "objects": objects,
            "resumed": resumed,
            "seconds": round(seconds, 3),
            "manifest": MANIFEST,
        }
    )


def failure(*, code: int, reason: str, message: str, retryable: bool, seconds: float) -> str:
    head = {"error": reason, "exitCode": code, "retryable": retryable, "seconds": round(seconds, 3)}
    while True:  # cut the message until the line fits in the termination log
        line = _line({**head, "message": message})
        if len(line) <= TERMINATION_LOG_LIMIT:
            return line
        message = message[: len(message) // 2]


def _line(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)
