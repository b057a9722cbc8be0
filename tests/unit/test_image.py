"""The operator's image, read without building it: operator/Dockerfile and its base.

The Dockerfile keeps only the botocore models of the services the operator calls; the list must
follow the code, or a client made for a service whose model was pruned fails only in the image,
at run time. Both bases it is built on (python:*-slim for `docker build`, the project's
mmdebstrap base for `make image`) must be the same Debian release.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import botocore

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "pinpoint_export_operator"
DOCKERFILE = (ROOT / "operator" / "Dockerfile").read_text()

# botocore's credential providers make these clients themselves, whatever the operator's code
# says: STS for assumed roles (credentials.assumeRoleArn) and for IRSA's web identity.
CREDENTIAL_CLIENTS = {"sts"}


def arg_default(name: str) -> str:
    match = re.search(rf'^ARG {name}="?([^"\n]*)"?$', DOCKERFILE, re.MULTILINE)
    assert match, f"operator/Dockerfile declares ARG {name} with a default"
    return match.group(1)


def clients_in_code() -> set[str]:
    """Every service named by a literal in a `<anything>.client("service", ...)` call."""
    services = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("client", "create_client")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                services.add(node.args[0].value)
    return services


def test_the_code_is_read() -> None:
    # The reader above finds the operator's clients: a refactor that hides them from it (a
    # service name in a variable) must update the reader, not pass silently.
    assert {"pinpoint", "s3"} <= clients_in_code()


def test_kept_botocore_models_are_exactly_the_services_called() -> None:
    kept = set(arg_default("BOTOCORE_SERVICES").split())
    needed = clients_in_code() | CREDENTIAL_CLIENTS
    assert needed <= kept, (
        f"add {sorted(needed - kept)} to BOTOCORE_SERVICES in operator/Dockerfile"
    )
    assert kept <= needed, f"{sorted(kept - needed)} in BOTOCORE_SERVICES: no code calls them"


def test_kept_botocore_models_exist() -> None:
    # The Dockerfile prunes botocore/data/<service>/: a misspelt name would keep nothing of it.
    data = Path(botocore.__file__).parent / "data"
    for service in arg_default("BOTOCORE_SERVICES").split():
        assert (data / service).is_dir(), f"botocore has no model named {service!r}"


def test_both_bases_are_the_same_debian_release() -> None:
    default = arg_default("PYTHON_IMAGE")
    suite = re.search(r"^suite=(\w+)$", (ROOT / "tools" / "base-image.sh").read_text(), re.M)
    assert suite, "tools/base-image.sh names its Debian suite"
    assert default.startswith("python:3.11-slim-"), default  # bookworm's python3 is 3.11
    assert default.endswith(f"-{suite.group(1)}"), (default, suite.group(1))


def test_runs_only_what_both_bases_have() -> None:
    # Debian's python3 package has no `python`; a minimal root file system has no useradd.
    runs = " ".join(re.findall(r"^RUN (.*(?:\n .*)*)", DOCKERFILE, re.MULTILINE))
    assert not re.search(r"\bpython\b(?![3.])", runs), "RUN python3, not python"
    assert not re.search(r"\b(useradd|groupadd|adduser)\b", runs)


def test_copies_only_what_dockerignore_admits() -> None:
    admitted = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    copied = re.findall(r"^COPY (?!--from)(.*) \S+$", DOCKERFILE, re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert source.rstrip("/") in admitted, f"{source} is not in the build context"
