"""STS AssumeRole, served beside Pinpoint on the emulator's port, recording every call.

The request and answer are STS's own (query protocol, `query`), so an unmodified botocore
(`AWS_ENDPOINT_URL_STS`) assumes roles here as it does at AWS: the operator's Pinpoint calls
and the copier's S3 calls alike. Each call's RoleArn, RoleSessionName, ExternalId, Tags and
the caller's access key id are recorded for the admin path (`/_emulator/sts/calls`); no
policy is evaluated, as no IAM exists here.

The temporary keys handed out are `IssuedKeys` when given: in the sandbox, the S3 server's
own keys, with an empty SessionToken, because versitygw refuses any session token sent with
its root keys (`InvalidToken`). Without them, fresh AWS-like keys and a token, which the
Pinpoint emulator (it checks no signature) accepts and no S3 server does.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from pinpoint_export_sandbox.emulator.model import ApiError, Params, WireResponse
from pinpoint_export_sandbox.emulator.query import QueryProtocol, load_model, validation_error
from pinpoint_export_sandbox.emulator.signing import Unsigned

log = logging.getLogger(__name__)

SERVICE_NAME = "sts"
MAX_CALLS = 1000  # calls kept for the admin path, the oldest dropped first
DEFAULT_DURATION = 3600
_ROLE_ARN = re.compile(r"arn:([\w-]+):iam::(\d{12}):role/(?:[^/]+/)*([^/]+)")
_KEY_ALPHABET = string.ascii_uppercase + string.digits
# AWS's front door, in STS's (query) words.
_REFUSALS = {
    "missing": (403, "MissingAuthenticationToken", "Request is missing Authentication Token"),
    "incomplete": (
        400,
        "IncompleteSignature",
        "Authorization header requires 'Credential', 'Signature', 'SignedHeaders' and "
        "'X-Amz-Date'.",
    ),
    "scope": (
        403,
        "SignatureDoesNotMatch",
        "Credential should be scoped to correct service: 'sts'. ",
    ),
}


@dataclass(frozen=True)
class IssuedKeys:
    """The temporary keys every AssumeRole answers with (their SessionToken is empty)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)

    @classmethod
    def from_env(cls) -> IssuedKeys | None:
        """botocore's own variables, as the emulator's S3 client reads them."""
        access, secret = (
            os.environ.get("AWS_ACCESS_KEY_ID"),
            os.environ.get("AWS_SECRET_ACCESS_KEY"),
        )
        return cls(access, secret) if access and secret else None


class SecurityTokenService:
    """AssumeRole, and the calls it received since the last reset."""

    def __init__(self, issued: IssuedKeys | None = None) -> None:
        self.protocol = QueryProtocol(load_model(SERVICE_NAME), emulated=("AssumeRole",))
        self.signing_name: str = self.protocol.model.signing_name
        self.issued = issued
        self.calls: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_CALLS)

    def handle(self, signed: str | Unsigned, body: bytes, request_id: str) -> WireResponse:
        """The answer to a request signed by `signed` (an access key id), or its refusal."""
        if isinstance(signed, Unsigned):
            status, code, message = _REFUSALS[signed.kind]
            return self.protocol.error(ApiError(code, message), request_id, status)
        try:
            operation, params = self.protocol.parse(body)
            output = self.assume_role(params, signed, request_id)
            return self.protocol.serialize(operation, output, request_id)
        except ApiError as error:
            return self.protocol.error(error, request_id)
        except Exception:
            log.exception("STS request %s failed", request_id)
            internal = ApiError("InternalFailure", "An internal error occurred")
            return self.protocol.error(internal, request_id, 500)

    def assume_role(self, params: Params, caller_key: str, request_id: str) -> Params:
        match = _ROLE_ARN.fullmatch(params["RoleArn"])
        if match is None:
            raise validation_error("Request ARN is invalid")
        partition, account, role_name = match.groups()
        session = params["RoleSessionName"]
        duration = params.get("DurationSeconds", DEFAULT_DURATION)
        self.calls.append(
            {
                "RoleArn": params["RoleArn"],
                "RoleSessionName": session,
                "ExternalId": params.get("ExternalId"),
                "Tags": params.get("Tags", []),
                "DurationSeconds": duration,
                "CallerAccessKeyId": caller_key,
                "RequestId": request_id,
            }
        )
        role_id = "AROA" + _stable_id(params["RoleArn"])
        return {
            "Credentials": {
                **self._keys(),
                "Expiration": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=duration),
            },
            "AssumedRoleUser": {
                "AssumedRoleId": f"{role_id}:{session}",
                "Arn": f"arn:{partition}:sts::{account}:assumed-role/{role_name}/{session}",
            },
        }

    def _keys(self) -> dict[str, str]:
        if self.issued is not None:
            return {
                "AccessKeyId": self.issued.access_key_id,
                "SecretAccessKey": self.issued.secret_access_key,
                "SessionToken": "",
            }
        return {
            "AccessKeyId": "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
            "SecretAccessKey": secrets.token_urlsafe(30),
            "SessionToken": base64.b64encode(secrets.token_bytes(300)).decode(),
        }

    def reset(self) -> None:
        self.calls.clear()


def _stable_id(text: str) -> str:
    """17 characters of [A-Z0-9] that stay the same for the same role, as AWS's role ids do."""
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
    chars = []
    for _ in range(17):
        digest, index = divmod(digest, len(_KEY_ALPHABET))
        chars.append(_KEY_ALPHABET[index])
    return "".join(chars)
