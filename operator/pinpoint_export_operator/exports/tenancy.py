"""Who an export is to AWS: the roles its namespace may name, and how its AssumeRole shows.

Pure functions of the export and the operator's configuration. `role_refusal` applies
`--allowed-roles` to spec.roleArn and spec.credentials.assumeRoleArn, before any AWS call;
`assume_role` is the AssumeRole both the operator and the copy Job make: a session name and
(with `--session-tags`) session tags that say which export asked, and the spec's ExternalId.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pinpoint_export_operator.config import AssumeRoleSettings, RoleRule
from pinpoint_export_operator.exports.steps import Export
from pinpoint_export_operator.runtime.aws import AssumeRole
from pinpoint_export_operator.runtime.errors import bounded

# AssumeRole's RoleSessionName: 2 to 64 of [\w+=,.@-]. Namespaces ([a-z0-9-]) and names
# ([a-z0-9.-]) use none outside it, and a namespace holds no '.', so `<namespace>.<name>` reads
# back unambiguously.
MAX_SESSION_NAME = 64
TAG_NAMESPACE = "pinpoint-export-namespace"
TAG_NAME = "pinpoint-export-name"


def matches(pattern: str, value: str) -> bool:
    """`*` matches any run of characters, `/` and `:` included; everything else is literal."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), value) is not None


def role_refusal(namespace: str, spec: Mapping[str, Any], rules: Sequence[RoleRule]) -> str | None:
    """Why the export may not name its roles, or None if it may (or no rule restricts any).

    The role the operator itself assumes is checked before the one it passes to Pinpoint."""
    if not rules:
        return None
    allowed = [rule.role for rule in rules if matches(rule.namespace, namespace)]
    named = (
        ("spec.credentials.assumeRoleArn", spec.get("credentials", {}).get("assumeRoleArn")),
        ("spec.roleArn", spec.get("roleArn")),
    )
    for field, arn in named:
        if arn and not any(matches(pattern, arn) for pattern in allowed):
            rule = f"allows only {', '.join(allowed)}" if allowed else "has no rule for it"
            return bounded(
                f"{field} {arn!r} is not allowed in namespace {namespace!r}: "
                f"the operator's --allowed-roles {rule}"
            )
    return None


def session_name(namespace: str, name: str) -> str:
    """`<namespace>.<name>`; past 64 characters, cut and ended with a hash of the whole, so
    two exports never share a session name."""
    full = f"{namespace}.{name}"
    if len(full) <= MAX_SESSION_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: MAX_SESSION_NAME - len(digest) - 1]}-{digest}"


def session_tags(namespace: str, name: str) -> tuple[tuple[str, str], ...]:
    """Tags CloudTrail records with the session, and IAM conditions can read
    (`aws:PrincipalTag/pinpoint-export-namespace`)."""
    return ((TAG_NAMESPACE, namespace), (TAG_NAME, name))


def assume_role(export: Export, settings: AssumeRoleSettings) -> AssumeRole | None:
    """The AssumeRole the export's calls (Pinpoint's and the copier's) go through, if any."""
    credentials = export.spec.get("credentials", {})
    role_arn = credentials.get("assumeRoleArn")
    if not role_arn:
        return None
    return AssumeRole(
        role_arn=role_arn,
        session_name=session_name(export.namespace, export.name),
        external_id=credentials.get("externalId"),
        tags=session_tags(export.namespace, export.name) if settings.session_tags else (),
        sts_endpoint_url=settings.sts_endpoint_url,
    )
