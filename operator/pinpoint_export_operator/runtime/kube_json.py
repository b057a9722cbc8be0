"""Plain-JSON requests to the API server over the official client's transport.

The official client brings configuration, authentication, TLS and connection pooling; its typed
API classes are avoided on purpose: constructing `CoreV1Api` alone allocates about 95 MB while
it builds validators for every method, and the process keeps most of that as RSS. The adapters
work with API objects as plain dicts, as Kopf and the manifest builders do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import RESTResponse

Json = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
REQUEST_TIMEOUT = 30.0


def call(
    api: client.ApiClient,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float | tuple[float, float] = REQUEST_TIMEOUT,
) -> RESTResponse:
    """Send one request; the raw response, whatever its status."""
    params = api.param_serialize(
        method,
        path,
        query_params=list((query or {}).items()),
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    return api.call_api(*params, _request_timeout=timeout)


def read(response: RESTResponse) -> bytes:
    """The response's body (the client leaves `read` untyped)."""
    data: bytes = response.read()  # type: ignore[no-untyped-call]
    return data


# Told of each request: (method, resource, seconds, and for a failure the HTTP status, or the
# transport's exception if no answer came); the operator counts them.
Observer = Callable[[str, str, float, str | None], None]


class KubeJson:
    def __init__(self, api: client.ApiClient, observe: Observer | None = None) -> None:
        self._api = api
        self._observe = observe

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Json:
        """The response as a dict; `client.ApiException` for a non-2xx status, as the typed
        API classes raise, so callers test `error.status` the usual way."""
        start = time.monotonic()
        try:
            response = call(self._api, method, path, query, body, content_type)
            data = read(response)
        except Exception as error:  # no answer: refused, reset, timed out
            self._told(method, path, start, type(error).__name__)
            raise
        failed = not 200 <= response.status < 300
        self._told(method, path, start, str(response.status) if failed else None)
        if failed:
            raise client.ApiException(http_resp=response)
        decoded: Json = json.loads(data) if data else {}
        return decoded

    def _told(self, method: str, path: str, start: float, failure: str | None) -> None:
        if self._observe is not None:
            self._observe(method, resource_of(path), time.monotonic() - start, failure)

    def get(self, path: str, query: dict[str, str] | None = None) -> Json:
        return self.request("GET", path, query=query)

    def create(self, collection: str, body: Json) -> Json:
        return self.request("POST", collection, body=body)

    def merge_patch(self, path: str, body: Json) -> Json:
        return self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    def json_patch(self, path: str, operations: list[Json]) -> Json:
        """RFC 6902: operations on exact places, e.g. one entry of a list, with a `test`."""
        return self.request("PATCH", path, body=operations, content_type=JSON_PATCH)

    def delete(self, path: str, body: Json | None = None) -> Json:
        return self.request("DELETE", path, body=body)

    def patch_status(self, path: str, status: Json) -> Json:
        """A merge patch of the object's status subresource: None values remove fields."""
        return self.merge_patch(f"{path}/status", {"status": status})


def namespaced(group_version: str, namespace: str, resource: str, name: str = "") -> str:
    """The path of a namespaced collection, or of one object in it."""
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    path = f"{prefix}/namespaces/{namespace}/{resource}"
    return f"{path}/{name}" if name else path


def served_resources(kube: KubeJson, group_version: str) -> set[str]:
    """The resources the API server serves in `group_version` (empty if it serves none)."""
    try:
        discovery = kube.get(f"/apis/{group_version}")
    except client.ApiException as error:
        if error.status == 404:
            return set()
        raise
    return {resource["name"] for resource in discovery.get("resources", [])}


def resource_of(path: str) -> str:
    """The resource a path names, without namespaces or object names: `jobs`,
    `pinpointexports/status` (bounded, for metrics labels)."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if "namespaces" in parts[:-1]:
        parts = parts[parts.index("namespaces") + 2 :]
    else:
        parts = parts[3:] if parts[:1] == ["apis"] else parts[2:]
    if not parts:
        return "discovery"
    return f"{parts[0]}/{parts[2]}" if len(parts) > 2 else parts[0]  # resource[/subresource]
