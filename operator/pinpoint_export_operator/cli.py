"""The `pinpoint-export-operator` command: `run` (the operator) and `copy` (the copier).

Each subcommand's module is imported only when chosen, so the copier starts without loading
Kopf or the Kubernetes client.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence

# subcommand -> (module, help). The module has `add_arguments(parser)` and `main(args)`.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("pinpoint_export_operator.run", "run the operator"),
    "copy": ("pinpoint_export_operator.copier.command", "copy a finished export to a directory"),
}


def build_parser(
    prog: str, description: str | None, commands: Mapping[str, tuple[str, str]], argv: Sequence[str]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in commands.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module)
        # Only the chosen command's module is imported to add its arguments.
        if argv[:1] == [name]:
            importlib.import_module(module).add_arguments(sub)
    return parser


def dispatch(
    prog: str,
    description: str | None,
    commands: Mapping[str, tuple[str, str]],
    argv: Sequence[str] | None = None,
) -> None:
    """Parse `argv` and run the chosen command's `main`, exiting with its status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog, description, commands, args_list).parse_args(args_list)
    sys.exit(importlib.import_module(args._module).main(args) or 0)


def main(argv: Sequence[str] | None = None) -> None:
    dispatch("pinpoint-export-operator", __doc__, COMMANDS, argv)
