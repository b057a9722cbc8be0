"""Kopf handlers: thin wiring from cluster events to the reconcilers. Importing registers them."""

from pinpoint_export_operator.handlers import exports, lifecycle, schedules

__all__ = ["exports", "lifecycle", "schedules"]
