"""The operator's configuration, from flags or environment: `pinpoint-export-operator run`.

Every flag has an environment variable (shown in `--help`), so the Helm chart and a local
shell configure it the same way. Configuration is plain data and imports nothing above it:
the resources read their part of it (`ExportDefaults`), the handlers build from all of it.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field

from pinpoint_export_operator import __version__

DEFAULT_IMAGE = f"ghcr.io/pinpoint-export-operator/pinpoint-export-operator:{__version__}"


@dataclass(frozen=True)
class CopierDefaults:
    """The operator's configuration that shapes every copy Job."""

    image: str = DEFAULT_IMAGE
    region: str | None = None
    s3_endpoint_url: str | None = None
    # Images a spec may choose with copy.image, by prefix. Whoever may create an export would
    # otherwise run any image in its namespace through the operator's rights.
    allowed_images: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportDefaults:
    """The operator's configuration for what an export's spec leaves out."""

    copier: CopierDefaults = field(default_factory=CopierDefaults)
    region: str | None = None
    pinpoint_endpoint_url: str | None = None


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    def flag(name: str, env: str, help_text: str, **kwargs: object) -> None:
        default = kwargs.pop("default", None)
        parser.add_argument(
            name,
            default=_env(env, None if default is None else str(default)),
            help=f"{help_text} [env {env}]" + (f" (default: {default})" if default else ""),
            **kwargs,  # type: ignore[arg-type]
        )

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
    return OperatorConfig(
        namespaces=tuple(n.strip() for n in (args.namespaces or "").split(",") if n.strip()),
        defaults=ExportDefaults(
            copier=CopierDefaults(
                image=args.copier_image,
                region=args.region,
                s3_endpoint_url=args.s3_endpoint_url,
                allowed_images=tuple(
                    i.strip() for i in (args.allowed_copier_images or "").split(",") if i.strip()
                ),
            ),
            region=args.region,
            pinpoint_endpoint_url=args.pinpoint_endpoint_url,
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
