"""The `pinpoint-export-sandbox` command: start, stop and use the local sandbox."""

from __future__ import annotations

from collections.abc import Sequence

from pinpoint_export_operator.cli import dispatch

# subcommand -> (module, help). The module has `add_arguments(parser)` and `main(args)`.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("pinpoint_export_sandbox.supervisor", "start the sandbox in the background"),
    "down": ("pinpoint_export_sandbox.supervisor", "stop the sandbox"),
    "serve": ("pinpoint_export_sandbox.supervisor", "run the sandbox in the foreground"),
    "demo": ("pinpoint_export_sandbox.demo", "run the operator end to end on the sandbox"),
    "emulator": ("pinpoint_export_sandbox.emulator.command", "run the Pinpoint emulator alone"),
    "provisioner": (
        "pinpoint_export_sandbox.provisioner",
        "run the sandbox's volume provisioner alone",
    ),
    "node-agent": ("pinpoint_export_sandbox.nodeagent", "run the node agent alone"),
}


def main(argv: Sequence[str] | None = None) -> None:
    dispatch("pinpoint-export-sandbox", __doc__, COMMANDS, argv)
