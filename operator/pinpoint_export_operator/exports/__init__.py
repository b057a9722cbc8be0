"""PinpointExport: one export run, from the Pinpoint job to verified files on a volume.

- `state`: the whole decision as pure functions (status + observation -> next status, Events).
- `steps`: what the decision takes and gives: the export, observations, actions, outcomes.
- `claims`: the claim on the create (who may call CreateExportJob, until when) and how far
  back the search for a run's job looks.
- `status`: the status's shape, as the CRD declares it.
- `reconciler`: the loop that performs the decisions, records them and waits.
- `pinpoint`: the Pinpoint adapter (the three export calls).
- `kube`: the Kubernetes adapter (status, copy Job, credentials Secret).
- `copy_job`: the copy Job's manifest, built as plain data.
- `credentials`: the credentials Secret's keys, read at most once per 30 s and shared.
- `tenancy`: the roles a namespace may name (`--allowed-roles`), and the AssumeRole (session
  name, ExternalId, session tags) both the operator and the copy Job make.
"""
