"""The proof platform of pinpoint-export-operator: real components on one machine.

Used by the operator's tests, its demo and its benchmarks; never shipped in the operator's
wheel or image. It depends on the operator package; the operator never imports it.

- `binaries`: finds the pinned Go binaries (etcd, kube-apiserver, ..., versitygw).
- `pki`: the control plane's certificates and the admin kubeconfig.
- `controlplane`: etcd, kube-apiserver and kube-controller-manager as supervised processes.
- `s3server`: versitygw on loopback with generated keys.
- `emulator/`: the Pinpoint export API, driven by botocore's service model.
- `provisioner`: binds claims of the default StorageClass to host directories.
- `nodeagent/`: a kubelet stand-in that runs pods' containers as local processes.
- `stack`: starts all of the above in order; `supervisor`: `up`, `down`, `serve`.
- `storage`, `process`: helpers for claims and child processes.
- `demo`: `make demo`, the operator end to end.
- `testing`: the pytest fixtures (a pytest plugin): `sandbox`, `api`, `namespace`, ...
"""

from pinpoint_export_operator import __version__  # the release the sandbox proves

__all__ = ["__version__"]
