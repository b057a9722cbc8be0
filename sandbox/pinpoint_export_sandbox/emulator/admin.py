"""A client for the emulator's admin path (`/_emulator/...`), for tests, the demo and benchmarks.

Setup through the admin path is neither counted nor faulted, so tests can prepare apps and
endpoints and then assert exact call counts for the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.faults import Faults

ADMIN_PATH = "/_emulator"


class EmulatorAdminError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"emulator admin: HTTP {status}: {message}")
        self.status = status


class EmulatorAdmin:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + ADMIN_PATH + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            try:
                message = json.load(error).get("error", error.reason)
            except ValueError:
                message = error.reason
            raise EmulatorAdminError(error.code, str(message)) from None

    def health(self) -> bool:
        return bool(self._call("GET", "/health").get("status") == "ok")

    def wait_ready(self, timeout: float = 30.0) -> None:
        process.wait_for(self.health, timeout, f"Pinpoint emulator at {self.url}")

    def create_app(self, name: str = "emulator", application_id: str | None = None) -> str:
        """Create an app without an API call (uncounted); returns its id."""
        body: dict[str, Any] = {"name": name}
        if application_id is not None:
            body["application_id"] = application_id
        return str(self._call("POST", "/apps", body)["Id"])

    def seed(
        self, application_id: str, count: int, *, seed: int = 0, id_prefix: str = "ep-"
    ) -> dict[str, Any]:
        """Add `count` deterministic synthetic endpoints `<id_prefix><n>` to an app.

        Numbering continues across calls for the same app; the answer's `start` is the first n.
        The endpoints are those of `synthetic.SyntheticBlock(app, seed, start, count, id_prefix)`.
        """
        body = {"count": count, "seed": seed, "id_prefix": id_prefix}
        result: dict[str, Any] = self._call("POST", f"/apps/{application_id}/seed", body)
        return result

    def seed_history(
        self, application_id: str, count: int, before: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Add `count` COMPLETED export jobs, one minute apart, without writing to S3.

        They were created before `before` (None: the app's oldest job, or now) and list after
        every job already there, newest first. Their S3UrlPrefix all start with the answer's
        `s3_url_prefix`, which no real run uses; the answer also names the `newest` and `oldest`
        CreationDate seeded.
        """
        body: dict[str, Any] = {"count": count}
        if before is not None:
            body["before"] = before.isoformat()
        result: dict[str, Any] = self._call("POST", f"/apps/{application_id}/history", body)
        return result

    def jobs(self, application_id: str, prefix: str = "") -> list[dict[str, Any]]:
        """The app's export jobs whose S3UrlPrefix starts with `prefix`, oldest first.

        Each is {id, s3_url_prefix, status, creation_date}: the jobs that really exist, however
        many calls were received or answered (`counters` counts those).
        """
        query = urllib.parse.urlencode({"prefix": prefix})
        jobs: list[dict[str, Any]] = self._call("GET", f"/apps/{application_id}/jobs?{query}")
        return jobs

    def faults(self) -> Faults:
        return Faults.from_json(self._call("GET", "/faults"))

    def set_faults(self, faults: Faults | None = None, **settings: Any) -> Faults:
        """Replace all faults: `set_faults(throttle_rate=0.3, seed=1)`; `set_faults()` clears.

        E.g. `set_faults(lose_response="drop", operations=["CreateExportJob"])`: the next
        CreateExportJob creates its job and the connection closes without an answer.
        """
        chosen = faults if faults is not None else Faults.from_json(settings)
        return Faults.from_json(self._call("PUT", "/faults", chosen.to_json()))

    def counters(self) -> dict[str, int]:
        """Calls per Pinpoint operation since the last reset, throttled and failed ones included."""
        counters: dict[str, int] = self._call("GET", "/counters")
        return counters

    def sts_calls(self) -> list[dict[str, Any]]:
        """STS AssumeRole calls since the last reset of counters, oldest first (the last 1000):
        each {RoleArn, RoleSessionName, ExternalId (or None), Tags: [{Key, Value}],
        DurationSeconds, CallerAccessKeyId (who signed it), RequestId}."""
        calls: list[dict[str, Any]] = self._call("GET", "/sts/calls")
        return calls

    def reset(self, *, state: bool = True, faults: bool = True, counters: bool = True) -> None:
        """`counters` also forgets the STS calls recorded."""
        self._call("POST", "/reset", {"state": state, "faults": faults, "counters": counters})
