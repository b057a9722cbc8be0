#!/usr/bin/env bash
# Builds the operator's image from operator/Dockerfile with podman (runc), on the base image made
# from Debian's packages (tools/base-image.sh), into the project's container storage
# (tools/containers.sh). Nothing is pulled: this works on a machine that reaches no registry.
#
# Usage:
#   tools/image.sh [IMAGE]   build IMAGE (default: the chart's default image, see `name`)
#   tools/image.sh name      print the chart's default image: its repository, tagged with the
#                            operator's version (the chart's appVersion, checked equal by tests)
#
# The image is also tagged with the chart's default name, so that the chart, installed with its
# defaults, finds it locally (the sandbox runs pods from it). Layers are cached in the storage:
# a rebuild after a change to the operator's code reinstalls only the operator, offline.
# CA_BUNDLE (default: the host's, when it has one) is mounted into the build for pip, never
# copied into a layer; CA_BUNDLE= builds without one.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

default_image() {
  local repository version
  repository=$(sed -n 's/^  repository: *//p' "$root/charts/pinpoint-export-operator/values.yaml" | head -n1)
  version=$(sed -n 's/^__version__ = "\([^"]*\)".*/\1/p' "$root/operator/pinpoint_export_operator/__init__.py")
  echo "$repository:$version"
}

if [[ ${1:-} == name ]]; then
  default_image
  exit
fi

image=${1:-$(default_image)}
eval "$("$root/tools/containers.sh" env)"
base=$("$root/tools/base-image.sh")

ca_bundle=${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
ca_args=()
if [[ -n $ca_bundle && -f $ca_bundle ]]; then
  mounted=/etc/ssl/certs/ca-certificates.crt
  ca_args=(--volume "$ca_bundle:$mounted:ro" --build-arg "CA_BUNDLE=$mounted")
fi

start=$SECONDS
echo "image: building $image on $base" >&2
# Host networking: no CNI bridge is configured (containers.conf). --pull=never: the base is local.
podman build --quiet --runtime runc --network host --pull=never --layers \
  --file "$root/operator/Dockerfile" --build-arg "PYTHON_IMAGE=$base" "${ca_args[@]}" \
  --tag "$image" --tag "$(default_image)" "$root" >/dev/null

# Both commands, as a restricted pod runs the image: a non-root uid, read-only, no capabilities.
for command in run copy; do
  podman run --rm --runtime runc --user 65532:65532 --read-only --tmpfs /tmp --cap-drop ALL \
    --security-opt no-new-privileges "$image" "$command" --help >/dev/null
done

# The operator images this one replaced, now untagged, go (each holds its own copy of the
# venv), unless a container (a sandbox pod) still runs from one. Only images carrying the final
# stage's label: the build stage's layers stay, they are the cache of the next build.
podman image prune --force --filter label=org.opencontainers.image.title=pinpoint-export-operator \
  >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image: built $image ($((size / 1000000)) MB) in $((SECONDS - start))s" >&2
