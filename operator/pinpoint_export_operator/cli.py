"""The `pinpoint-export-operator` command: `run`, `copy` and `sandbox ...`.

Each subcommand imports its module lazily, so the copier starts fast and the operator image
needs nothing from the sandbox.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand path -> (module, help). The module has `add_arguments(parser)` and `main(args)`.
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("run",): ("pinpoint_export_operator.settings", "run the operator"),
    ("copy",): ("pinpoint_export_operator.copier.command", "copy a finished export to a directory"),
    ("sandbox", "up"): ("pinpoint_export_operator.sandbox.supervisor", "start the sandbox"),
    ("sandbox", "down"): ("pinpoint_export_operator.sandbox.supervisor", "stop the sandbox"),
    ("sandbox", "serve"): ("pinpoint_export_operator.sandbox.supervisor", "run the sandbox here"),
    ("sandbox", "emulator"): (
        "pinpoint_export_operator.sandbox.emulator.command",
        "run the Pinpoint emulator alone",
    ),
    ("sandbox", "demo"): (
        "pinpoint_export_operator.sandbox.demo",
        "run the operator end to end on the sandbox",
    ),
    ("sandbox", "provisioner"): (
        "pinpoint_export_operator.sandbox.provisioner",
        "run the sandbox's volume provisioner alone",
    ),
    ("sandbox", "node-agent"): (
        "pinpoint_export_operator.sandbox.nodeagent",
        "run the node agent alone",
    ),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pinpoint-export-operator", description=__doc__)
    groups: dict[tuple[str, ...], argparse._SubParsersAction[argparse.ArgumentParser]] = {
        (): parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    }
    for path, (module, help_text) in COMMANDS.items():
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                sub = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} commands")
                groups[prefix] = sub.add_subparsers(
                    dest=f"command_{depth}", required=True, metavar="COMMAND"
                )
        sub = groups[path[:-1]].add_parser(path[-1], help=help_text, description=help_text)
        sub.set_defaults(_path=path, _module=module)
        # Only the chosen command's module is imported to add its arguments.
        if list(path) == list(argv[: len(path)]):
            importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(args._module)
    sys.exit(module.main(args) or 0)
