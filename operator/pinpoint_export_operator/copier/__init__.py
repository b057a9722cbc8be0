"""The copier: the program the copy Job runs (`pinpoint-export-operator copy`).

- `command`: the command line, logging, the termination message and the exit code.
- `pipeline`: one copy run: list, map names, check the free space, copy or resume each
  object, then publish and apply `--keep-runs` (a run already complete is reported as
  recorded).
- `source`: the run's objects in S3 (URL, client, listing).
- `transfer`: concurrent ranged GETs written straight into a file, read back block by block
  as they land.
- `verify`: checks on the bytes as they stream past (count, sha256, a full gzip decode with
  ISA-L's inflate or zlib's, and the decoded lines: the endpoints).
- `safepaths`: S3 keys mapped to safe file names inside the run directory.
- `layout`: the run directory, reached without following symlinks: atomic files, `_SUCCESS`,
  the `latest` link.
- `access`: the check, before S3 is listed, that it can write where the run goes
  (`DestinationNotWritable`, with what to change).
- `space`: the free-space check before anything is written (`InsufficientSpace`).
- `retention`: `--keep-runs`, removing the oldest complete runs beside the one published,
  and nothing else.
- `manifest`: manifest.json (bytes, sha256 and lines of each file) and the one-line summary
  (`CopierSummary`, the type the operator reads it as).
- `exitcodes`: exit codes, and which failures a retry can fix.

It imports neither Kopf nor the Kubernetes client (an import contract): it starts fast.
"""
