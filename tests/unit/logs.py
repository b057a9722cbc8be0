"""A stand-in for Kopf's logger that keeps what the reconcilers log."""

from __future__ import annotations


class Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    warning = info
