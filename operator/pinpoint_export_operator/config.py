"""The operator's configuration, from flags or environment: `pinpoint-export-operator run`.

Every flag has an environment variable (shown in `--help`), so the Helm chart and a local
shell configure it the same way. Configuration is plain data and imports nothing above it:
the resources read their part of it (`ExportDefaults`), the handlers build from all of it.
A value that cannot be used (a malformed role rule, a reserved label, JSON that is not an
object) stops the operator at start-up with argparse's message, never at the first export.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pinpoint_export_operator import __version__, api

DEFAULT_IMAGE = f"ghcr.io/pinpoint-export-operator/pinpoint-export-operator:{__version__}"

# Copy pod labels that the operator sets or relies on, and those the Job controller sets
# (`job-name`, `controller-uid`, `batch.kubernetes.io/...`): neither the operator's defaults
# nor an export's spec.copy.podLabels may set them. The CRD refuses the same keys.
RESERVED_LABELS = (api.LABEL_MANAGED_BY, "job-name", "controller-uid")
RESERVED_LABEL_PREFIXES = (f"{api.GROUP}/", "batch.kubernetes.io/")
AFFINITY_KINDS = ("nodeAffinity", "podAffinity", "podAntiAffinity")

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
_NAMESPACE_PATTERN = re.compile(r"[a-z0-9*][-a-z0-9*]{0,62}")
_ROLE_PATTERN = re.compile(r"\*|arn:[A-Za-z0-9+=,.@_/:*-]+")


def is_reserved_label(key: str) -> bool:
    return key in RESERVED_LABELS or key.startswith(RESERVED_LABEL_PREFIXES)


@dataclass(frozen=True)
class RoleRule:
    """`<namespace>=<role ARN>`: exports in the namespace may name the role, in
    spec.credentials.assumeRoleArn and spec.roleArn. `*` on either side matches any run of
    characters (`/` and `:` included); nothing else is special."""

    namespace: str
    role: str

    def __str__(self) -> str:
        return f"{self.namespace}={self.role}"


@dataclass(frozen=True)
class AssumeRoleSettings:
    """How the operator and its copy Jobs call STS AssumeRole for spec.credentials.assumeRoleArn."""

    # Session tags need sts:TagSession in the role's trust policy, or AssumeRole is refused.
    session_tags: bool = False
    # None: botocore's own resolution (AWS_ENDPOINT_URL_STS, else AWS's regional endpoint).
    sts_endpoint_url: str | None = None


@dataclass(frozen=True)
class CopierDefaults:
    """The operator's configuration that shapes every copy Job; spec.copy overrides each
    pod setting (`image_pull_secrets` ... `affinity`)."""

    image: str = DEFAULT_IMAGE
    region: str | None = None
    s3_endpoint_url: str | None = None
    # Images a spec may choose with copy.image, by prefix. Whoever may create an export would
    # otherwise run any image in its namespace through the operator's rights.
    allowed_images: tuple[str, ...] = ()
    assume_role: AssumeRoleSettings = field(default_factory=AssumeRoleSettings)
    image_pull_secrets: tuple[str, ...] = ()
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    priority_class_name: str | None = None
    affinity: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportDefaults:
    """The operator's configuration for what an export's spec leaves out."""

    copier: CopierDefaults = field(default_factory=CopierDefaults)
    region: str | None = None
    pinpoint_endpoint_url: str | None = None
    assume_role: AssumeRoleSettings = field(default_factory=AssumeRoleSettings)
    # Empty: any namespace may name any role (the operator's IAM permissions decide).
    allowed_roles: tuple[RoleRule, ...] = ()


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    defaults: ExportDefaults = field(default_factory=ExportDefaults)
    aws_concurrency: int = 16
    liveness_port: int = 8081
    metrics_port: int = 8080
    metrics_per_schedule: bool = False
    log_format: str = "text"
    log_level: str = "INFO"
    peering: str | None = None
    peering_priority: int = 0


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def _fail(message: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(message)


def parse_role_rules(text: str) -> tuple[RoleRule, ...]:
    """`team-a=arn:aws:iam::111111111111:role/team-a-* team-b=...`: rules separated by spaces
    or newlines (role names may hold commas), each `<namespace>=<role ARN>`."""
    rules = []
    for item in (text or "").split():
        namespace, _, role = item.partition("=")
        if not _NAMESPACE_PATTERN.fullmatch(namespace) or not _ROLE_PATTERN.fullmatch(role):
            raise _fail(
                f"{item[:200]!r} is not <namespace>=<role ARN>, e.g. "
                "team-a=arn:aws:iam::111111111111:role/team-a-* (`*` matches any characters)"
            )
        if "=arn:" in role:
            raise _fail(f"{item[:200]!r} holds two rules: separate rules with spaces, not commas")
        rules.append(RoleRule(namespace, role))
    return tuple(rules)


def _json_object(text: str, what: str) -> dict[str, Any]:
    if not (text or "").strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise _fail(f"{what} must be a JSON object: {error}") from None
    if not isinstance(value, dict):
        raise _fail(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _is_qualified_name(key: str) -> bool:
    """A label or annotation key: `[<DNS subdomain>/]<name>`, as Kubernetes checks it."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return bool(_LABEL_NAME.fullmatch(name))


def _string_map(text: str, what: str) -> dict[str, str]:
    value = _json_object(text, what)
    for key, item in value.items():
        if not _is_qualified_name(key):
            raise _fail(f"{what}: {key[:100]!r} is not a valid key ([<prefix>/]<name>)")
        if not isinstance(item, str):
            raise _fail(f"{what}: the value of {key!r} must be a string")
    return value


def parse_pod_labels(text: str) -> dict[str, str]:
    labels = _string_map(text, "copy pod labels")
    for key, value in labels.items():
        if is_reserved_label(key):
            raise _fail(f"copy pod labels: {key!r} is set by the operator or the Job controller")
        if not _LABEL_VALUE.fullmatch(value):
            raise _fail(f"copy pod labels: {value[:100]!r} (of {key!r}) is not a label value")
    return labels


def parse_pod_annotations(text: str) -> dict[str, str]:
    return _string_map(text, "copy pod annotations")


def parse_affinity(text: str) -> dict[str, Any]:
    affinity = _json_object(text, "copy pod affinity")
    unknown = sorted(set(affinity) - set(AFFINITY_KINDS))
    if unknown:
        raise _fail(f"copy pod affinity: unknown keys {unknown}; use {', '.join(AFFINITY_KINDS)}")
    return affinity


def _names(text: str) -> tuple[str, ...]:
    names = _comma_list(text)
    for name in names:
        if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
            raise _fail(f"{name[:100]!r} is not a Kubernetes object name (a DNS-1123 subdomain)")
    return names


def _optional_name(text: str) -> str | None:
    names = _names(text)
    if len(names) > 1:
        raise _fail(f"{text[:100]!r}: one name, not a list")
    return names[0] if names else None


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise _fail(f"{text!r} is neither true nor false")
    return text == "true"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    def flag(name: str, env: str, help_text: str, **kwargs: object) -> None:
        default = kwargs.pop("default", None)
        parser.add_argument(
            name,
            default=_env(env, None if default is None else str(default)),
            help=f"{help_text} [env {env}]" + (f" (default: {default})" if default else ""),
            **kwargs,  # type: ignore[arg-type]
        )

    def parsed(name: str, env: str, help_text: str, parse: Callable[[str], object]) -> None:
        """A flag whose value (from the command line or the environment) `parse` checks."""
        flag(name, env, help_text, type=parse, default="")

    flag(
        "--namespaces",
        "PPE_NAMESPACES",
        "comma-separated namespaces to watch; empty means the whole cluster",
        default="",
    )
    flag("--copier-image", "PPE_COPIER_IMAGE", "image of the copy Jobs", default=DEFAULT_IMAGE)
    flag(
        "--allowed-copier-images",
        "PPE_ALLOWED_COPIER_IMAGES",
        "comma-separated image prefixes that spec.copy.image may name; empty: only the default",
        default="",
    )
    parsed(
        "--allowed-roles",
        "PPE_ALLOWED_ROLES",
        "which IAM roles each namespace's exports may name in spec.roleArn and "
        "spec.credentials.assumeRoleArn: space-separated <namespace>=<role ARN> rules, `*` "
        "matching any characters, e.g. team-a=arn:aws:iam::111111111111:role/team-a-*; a "
        "namespace without a rule may name none; empty: no restriction",
        parse_role_rules,
    )
    flag(
        "--session-tags",
        "PPE_SESSION_TAGS",
        "tag AssumeRole sessions with pinpoint-export-namespace and pinpoint-export-name "
        "(the role's trust policy must allow sts:TagSession): true or false",
        default="false",
        type=_boolean,
    )
    flag(
        "--sts-endpoint-url",
        "AWS_ENDPOINT_URL_STS",
        "STS endpoint for spec.credentials.assumeRoleArn, for the operator and its copy Jobs",
    )
    parsed(
        "--copy-image-pull-secrets",
        "PPE_COPY_IMAGE_PULL_SECRETS",
        "comma-separated Secrets (in each export's namespace) the copy pods pull their image "
        "with, unless spec.copy.imagePullSecrets is set",
        _names,
    )
    parsed(
        "--copy-pod-labels",
        "PPE_COPY_POD_LABELS",
        'labels of every copy pod, a JSON object, e.g. {"team": "data"}; '
        "spec.copy.podLabels adds to them and wins on the same key",
        parse_pod_labels,
    )
    parsed(
        "--copy-pod-annotations",
        "PPE_COPY_POD_ANNOTATIONS",
        'annotations of every copy pod, a JSON object, e.g. {"sidecar.istio.io/inject": '
        '"false"}; spec.copy.podAnnotations adds to them and wins on the same key',
        parse_pod_annotations,
    )
    flag(
        "--copy-priority-class-name",
        "PPE_COPY_PRIORITY_CLASS_NAME",
        "PriorityClass of the copy pods, unless spec.copy.priorityClassName is set",
        type=_optional_name,
    )
    parsed(
        "--copy-affinity",
        "PPE_COPY_AFFINITY",
        "affinity of the copy pods, a JSON object as in a Pod (nodeAffinity, podAffinity, "
        "podAntiAffinity), unless spec.copy.affinity is set",
        parse_affinity,
    )
    flag("--region", "AWS_REGION", "default AWS region for exports that do not set one")
    flag(
        "--pinpoint-endpoint-url",
        "PPE_PINPOINT_ENDPOINT_URL",
        "Pinpoint endpoint for exports that do not set spec.endpointUrl "
        "(boto3 also honours AWS_ENDPOINT_URL_PINPOINT)",
    )
    flag(
        "--s3-endpoint-url",
        "PPE_S3_ENDPOINT_URL",
        "S3 endpoint the copy Jobs use when spec.s3EndpointUrl is not set",
    )
    flag(
        "--aws-concurrency",
        "PPE_AWS_CONCURRENCY",
        "AWS calls in flight at once, across all exports",
        default=16,
        type=int,
    )
    flag(
        "--liveness-port", "PPE_LIVENESS_PORT", "port of /healthz (0: off)", default=8081, type=int
    )
    flag("--metrics-port", "PPE_METRICS_PORT", "port of /metrics (0: off)", default=8080, type=int)
    flag(
        "--metrics-per-schedule",
        "PPE_METRICS_PER_SCHEDULE",
        "also export each schedule's last success and last schedule times, labelled by "
        "schedule name (one series per schedule): true or false",
        default="false",
        choices=["true", "false"],
    )
    flag("--log-format", "PPE_LOG_FORMAT", "text or json", default="text", choices=["text", "json"])
    flag("--log-level", "PPE_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", default="INFO")
    flag(
        "--peering",
        "PPE_PEERING",
        "Kopf peering name for high availability (one active replica); empty: standalone",
    )
    flag(
        "--peering-priority",
        "PPE_PEERING_PRIORITY",
        "this replica's priority (default: older replicas first, so a restarted one never "
        "takes over from a running one)",
        type=int,
    )


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    assume_role = AssumeRoleSettings(
        session_tags=bool(args.session_tags), sts_endpoint_url=args.sts_endpoint_url or None
    )
    return OperatorConfig(
        namespaces=_comma_list(args.namespaces),
        defaults=ExportDefaults(
            copier=CopierDefaults(
                image=args.copier_image,
                region=args.region,
                s3_endpoint_url=args.s3_endpoint_url,
                allowed_images=_comma_list(args.allowed_copier_images),
                assume_role=assume_role,
                image_pull_secrets=tuple(args.copy_image_pull_secrets),
                pod_labels=args.copy_pod_labels,
                pod_annotations=args.copy_pod_annotations,
                priority_class_name=args.copy_priority_class_name,
                affinity=args.copy_affinity,
            ),
            region=args.region,
            pinpoint_endpoint_url=args.pinpoint_endpoint_url,
            assume_role=assume_role,
            allowed_roles=tuple(args.allowed_roles),
        ),
        aws_concurrency=int(args.aws_concurrency),
        liveness_port=int(args.liveness_port),
        metrics_port=int(args.metrics_port),
        metrics_per_schedule=args.metrics_per_schedule == "true",
        log_format=args.log_format,
        log_level=args.log_level.upper(),
        peering=args.peering or None,
        # Replicas of one Deployment share their settings: without an explicit priority each
        # ranks by start time (older is higher), since Kopf freezes peers of equal priority.
        peering_priority=(
            -time.time_ns() if args.peering_priority is None else int(args.peering_priority)
        ),
    )
