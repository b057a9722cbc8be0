"""A local emulator of Amazon Pinpoint's endpoint-export API and STS AssumeRole, per botocore.

- `model`: the rest-json protocol, driven by botocore's service model.
- `storage`: apps, their endpoints, segment versions and export jobs with their statuses.
- `state`: the operations on them (`Pinpoint`), one method per operation.
- `synthetic`, `segments`: seeded endpoints and the segments that select them.
- `jobs`, `export`: export jobs through their statuses, writing .gz pieces to S3.
- `history`: old, finished export jobs seeded cheaply into an app.
- `query`, `sts`: STS's query protocol, driven by botocore's `sts` model, and AssumeRole, served
  on the same port and recorded.
- `signing`: the SigV4 scope check of AWS's front door.
- `faults`, `app`: fault injection (lost answers included) and the HTTP server (`Emulator` runs
  it in a thread).
- `admin_routes`, `admin`: the admin path (`/_emulator/`) and its client; `command`: the CLI.
"""

from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin, EmulatorAdminError
from pinpoint_export_sandbox.emulator.app import Emulator, EmulatorConfig
from pinpoint_export_sandbox.emulator.faults import Faults
from pinpoint_export_sandbox.emulator.jobs import Timing

__all__ = ["Emulator", "EmulatorAdmin", "EmulatorAdminError", "EmulatorConfig", "Faults", "Timing"]
