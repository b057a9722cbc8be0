"""Kubernetes operator that runs Amazon Pinpoint endpoint exports and copies them to a volume.

- `cli`, `run`: the `pinpoint-export-operator` command; `run` starts the operator.
- `handlers/`: Kopf's wiring, one line per event; `lifecycle` builds everything at start-up.
- `exports/`: PinpointExport, one export run (state, status, reconciler, adapters, copy Job).
- `schedules/`: PinpointExportSchedule, recurring exports (cron, state, reconciler, adapter).
- `copier/`: the program the copy Job runs (`pinpoint-export-operator copy`).
- `config`: the operator's flags and environment, as plain data.
- `runtime/`: what both resources share (errors, backoff, wakeups, Events, adapters' plumbing).
- `api`: the API's names and the names derived from an object.

Arrows point down this list only; `.importlinter` holds the contracts.
"""

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it)
