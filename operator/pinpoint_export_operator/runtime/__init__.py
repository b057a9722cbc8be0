"""What both resources use, and neither owns.

- `timestamps`: RFC 3339 strings to datetimes and back.
- `errors`: `CloudError`, and the one rule for which HTTP failures are transient.
- `backoff`: jittered exponential backoff.
- `wakeups`: daemons that sleep until due and wake early on events; Kopf's stop flag.
- `events`: Kubernetes Events as values, posted once.
- `conditions`: metav1.Condition lists (kstatus's Ready, Reconciling, Stalled).
- `objects`: plain copies of Kopf's bodies; the controller ownership rule.
- `kube_json`: plain-JSON requests over the official client's transport.
- `adopt`: create with a deterministic name, or adopt what an earlier attempt created.
- `aws`: boto3 clients per identity, calls in a bounded pool, failures classified.
- `metrics`: the Prometheus registry and its endpoint.

Nothing here imports a resource's package, the handlers or the configuration.
"""
