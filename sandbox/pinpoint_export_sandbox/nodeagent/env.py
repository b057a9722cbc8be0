"""A container's environment as the kubelet builds it: `$(VAR)` expansion, then envFrom and env
(literal values, Secret and ConfigMap keys, the downward API) over the `kubernetes` service's
variables.
"""

from __future__ import annotations

from collections.abc import Callable

from .downward import field_value, resource_value
from .errors import ConfigError
from .node import Host
from .podspec import Json, Sources, referenced_data


def expand(value: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion: `$$` escapes, unknown references stay as written."""
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char != "$" or i + 1 == len(value):
            out.append(char)
            i += 1
            continue
        following = value[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            close = value.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
                continue
            name = value[i + 2 : close]
            found = lookup(name)
            out.append(f"$({name})" if found is None else found)
            i = close + 1
        else:
            out.append("$" + following)
            i += 2
    return "".join(out)


def service_env(host: Host) -> dict[str, str]:
    """The `kubernetes` service's variables, pointing at the real API server (no kube-proxy)."""
    return {
        "KUBERNETES_SERVICE_HOST": host.api_host,
        "KUBERNETES_SERVICE_PORT": str(host.api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(host.api_port),
        "KUBERNETES_PORT": f"tcp://{host.api_host}:{host.api_port}",
    }


def _text(data: bytes) -> str:
    # The kubelet passes bytes through; surrogateescape round-trips them to the exec'd process.
    return data.decode("utf-8", "surrogateescape")


def container_env(pod: Json, container: Json, sources: Sources, host: Host) -> dict[str, str]:
    """The container's environment: envFrom, then env in order (each value may refer to the
    variables before it and the service variables), then the service variables not set."""
    namespace = pod["metadata"].get("namespace", "default")
    service = service_env(host)
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            data = referenced_data(sources.config_maps, "configmap", source["configMapRef"])
        else:
            data = referenced_data(sources.secrets, "secret", source["secretRef"])
        for key, raw in (data or {}).items():
            name = source.get("prefix", "") + key
            if name and "=" not in name:  # the kubelet skips keys that are not variable names
                env[name] = _text(raw)
    for var in container.get("env") or []:
        value_from = var.get("valueFrom")
        if value_from is None:
            env[var["name"]] = expand(var.get("value", ""), lambda n: env.get(n, service.get(n)))
            continue
        value = _value_from(pod, container, value_from, sources, host, namespace)
        if value is not None:
            env[var["name"]] = value
    return {**service, **env}


def _value_from(
    pod: Json, container: Json, value_from: Json, sources: Sources, host: Host, namespace: str
) -> str | None:
    if "fieldRef" in value_from:
        return field_value(pod, value_from["fieldRef"]["fieldPath"], host.node_name)
    if "resourceFieldRef" in value_from:
        ref = value_from["resourceFieldRef"]
        name = ref.get("containerName") or container["name"]
        return resource_value(pod, name, ref["resource"], ref.get("divisor"))
    for key, kind, objects in (
        ("secretKeyRef", "Secret", sources.secrets),
        ("configMapKeyRef", "ConfigMap", sources.config_maps),
    ):
        if key in value_from:
            ref = value_from[key]
            data = referenced_data(objects, kind.lower(), ref)
            if data is None:
                return None
            if ref["key"] not in data:
                if ref.get("optional", False):
                    return None
                raise ConfigError(
                    f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}"
                )
            return _text(data[ref["key"]])
    raise ConfigError(f"unsupported valueFrom {sorted(value_from)}")
