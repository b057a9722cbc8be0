"""PinpointExportSchedule: recurring exports, as a CronJob is to Jobs.

- `cron`: schedules and time zones (cronsim over zoneinfo), the most recent due time.
- `state`: the whole decision as a pure function (runs to start, exports to delete, status).
- `status`: the status's shape, as the CRD declares it.
- `reconciler`: the loop that performs the decisions, records them and sleeps until due.
- `kube`: the Kubernetes adapter (the schedule's exports and status).
"""
