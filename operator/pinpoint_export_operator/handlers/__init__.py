"""Kopf handlers: thin wiring from cluster events to the reconcilers. Importing registers them.

- `lifecycle`: the one start-up handler (builds the reconcilers and clients) and clean-up.
- `exports`: a daemon per active PinpointExport; its copy Job's events wake it.
- `schedules`: a daemon per PinpointExportSchedule; spec, trigger and finished runs wake it.

Only `run` imports this package.
"""

from pinpoint_export_operator.handlers import exports, lifecycle, schedules

__all__ = ["exports", "lifecycle", "schedules"]
