"""SigV4 as AWS's front door checks it, before any service sees the request.

Who signed (the access key id) and for which service (the credential scope) are read from the
`Authorization` header or a presigned query; the signature itself is not verified, so any
credentials work. Each protocol words its own refusal of `Unsigned` requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

_SCOPE = re.compile(r"([^/\s,]+)/\d{8}/([^/\s,]+)/([^/\s,]+)/aws4_request")


@dataclass(frozen=True)
class Unsigned:
    """Why a request is refused: no SigV4 at all, an incomplete one, or one scoped to another
    service (or to no readable scope)."""

    kind: Literal["missing", "incomplete", "scope"]


def signer(headers: Mapping[str, str], query: Mapping[str, str], service: str) -> str | Unsigned:
    """The access key id that signed the request for `service`, or why it is refused."""
    authorization = headers.get("Authorization", "")
    if authorization.startswith("AWS4-HMAC-SHA256 "):
        credential = re.search(r"Credential=(\S+?),", authorization)
        complete = "SignedHeaders=" in authorization and "Signature=" in authorization
        if credential is None or not complete or "X-Amz-Date" not in headers:
            return Unsigned("incomplete")
        scope = credential.group(1)
    elif "X-Amz-Credential" in query:
        scope = query["X-Amz-Credential"]
    else:
        return Unsigned("missing")
    match = _SCOPE.fullmatch(scope)
    if match is None or match.group(3) != service:
        return Unsigned("scope")
    return match.group(1)
