"""A small JSON client over the official client's transport, and a list-then-watch informer.

The agent works with plain API dicts (what the pure planning functions take), so it uses the
official client only for configuration, authentication and connection pooling.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import urllib3
from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines

from pinpoint_export_operator.runtime import kube_json

Json = dict[str, Any]
log = logging.getLogger(__name__)

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = kube_json.MERGE_PATCH


class ApiError(Exception):
    def __init__(self, status: int, body: Json) -> None:
        super().__init__(f"{status}: {body.get('message', body)}")
        self.status = status
        self.body = body


# What may go wrong talking to the API server, including while it restarts.
TRANSIENT = (ApiError, urllib3.exceptions.HTTPError, OSError, ValueError)


class Kube:
    def __init__(self, kubeconfig: str, pool_size: int = 256) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.connection_pool_maxsize = pool_size  # one per concurrent pod thread
        self.api = client.ApiClient(configuration)
        server = urlsplit(configuration.host)
        self.host = server.hostname or "127.0.0.1"
        self.port = server.port or 443

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Json | None = None,
        content_type: str = "application/json",
    ) -> Json:
        """Make a request; the response as a dict; ApiError for a non-2xx status."""
        response = kube_json.call(self.api, method, path, query, body, content_type)
        data = kube_json.read(response)
        decoded: Json = json.loads(data) if data else {}
        if not 200 <= response.status < 300:
            raise ApiError(response.status, decoded)
        return decoded

    def get(self, path: str) -> Json | None:
        """The object at `path`, None if it does not exist."""
        try:
            return self.request("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def watch(self, path: str, query: dict[str, str], timeout: int) -> Iterator[Json]:
        """Watch events until the server ends the watch after `timeout` seconds."""
        query = {**query, "watch": "true", "timeoutSeconds": str(timeout)}
        response = kube_json.call(self.api, "GET", path, query, timeout=(10.0, timeout + 30.0))
        if response.status != 200:
            raise ApiError(response.status, json.loads(kube_json.read(response) or b"{}"))
        try:
            for line in iter_resp_lines(response.response):
                if line:
                    yield json.loads(line)
        finally:
            response.response.release_conn()


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class Informer(threading.Thread):
    """List, then watch from the list's resourceVersion; list again every `resync` seconds,
    when the watch expires and after errors (the API server may restart)."""

    def __init__(
        self,
        kube: Kube,
        path: str,
        field_selector: str,
        on_event: Callable[[str, Json], None],
        on_list: Callable[[list[Json]], None],
        stop: threading.Event,
        resync: float = 60.0,
    ) -> None:
        super().__init__(name=f"informer {path}?{field_selector}", daemon=True)
        self.kube = kube
        self.path = path
        self.query = {"fieldSelector": field_selector}
        self.on_event = on_event
        self.on_list = on_list
        self.stop = stop
        self.resync = resync

    def run(self) -> None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                self._list_and_watch()
                delay = 0.5
            except Expired:
                log.debug("%s: watch expired, listing again", self.name)
            except TRANSIENT as error:
                log.warning("%s: %s; retrying in %.1fs", self.name, error, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                log.exception("%s: handler failed", self.name)
                self.stop.wait(delay)

    def _list_and_watch(self) -> None:
        listing = self.kube.request("GET", self.path, query=self.query)
        self.on_list(listing.get("items") or [])
        version = listing["metadata"]["resourceVersion"]
        deadline = time.monotonic() + self.resync
        while not self.stop.is_set() and (remaining := deadline - time.monotonic()) > 1:
            query = {**self.query, "resourceVersion": version, "allowWatchBookmarks": "true"}
            for event in self.kube.watch(self.path, query, int(remaining)):
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired
                    raise ApiError(int(obj.get("code", 500)), obj)
                version = obj["metadata"]["resourceVersion"]
                if kind != "BOOKMARK":
                    self.on_event(kind, obj)
                if self.stop.is_set():
                    return
