"""`pinpoint-export-operator run`: configure Kopf and run the operator until it is stopped.

The one module that imports the handlers (importing them registers them with Kopf).
"""

from __future__ import annotations

import argparse
import logging

from pinpoint_export_operator.config import add_arguments, config_from_args
from pinpoint_export_operator.runtime.memory import cap_malloc_arenas

__all__ = ["add_arguments", "main"]

# At DEBUG these libraries log whole requests and responses, AssumeRole's temporary secret key
# among them: they never log below INFO, whatever --log-level says.
SDK_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")


def quiet_sdk_logs(level: str) -> None:
    floor = max(logging.INFO, logging.getLevelName(level))
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(floor)


def main(args: argparse.Namespace) -> int:
    import kopf

    import pinpoint_export_operator.handlers  # noqa: F401  (registers the handlers)

    cfg = config_from_args(args)
    kopf.configure(
        log_format=kopf.LogFormat.JSON if cfg.log_format == "json" else kopf.LogFormat.FULL,
        verbose=cfg.log_level == "DEBUG",
        quiet=cfg.log_level in ("WARNING", "ERROR"),
    )
    logging.getLogger().setLevel(cfg.log_level)
    quiet_sdk_logs(cfg.log_level)
    cap_malloc_arenas()  # before Kopf and the pools start their threads
    kopf.run(
        clusterwide=not cfg.namespaces,
        namespaces=list(cfg.namespaces),
        standalone=cfg.peering is None,
        priority=cfg.peering_priority,
        peering_name=cfg.peering,
        liveness_endpoint=(
            f"http://0.0.0.0:{cfg.liveness_port}/healthz" if cfg.liveness_port else None
        ),
        memo=kopf.Memo(config=cfg),
    )
    return 0
