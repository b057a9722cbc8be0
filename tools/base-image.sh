#!/usr/bin/env bash
# The base image operator/Dockerfile builds on (its PYTHON_IMAGE), made from Debian's packages
# with mmdebstrap, so that `make image` needs no container registry: a Debian bookworm root file
# system with python3 and the CA certificates, imported into the project's container storage
# (tools/containers.sh) as localhost/pinpoint-export-operator-base:bookworm-python3.
#
# The root file system's tarball is cached beside that storage under a name derived from the
# recipe below: it is rebuilt only when the recipe changes (or with --rebuild, e.g. to pick up
# Debian's security updates), and imported again only when the stored image is not its import.
# Prints the image's name on stdout; everything else goes to stderr.
set -euo pipefail

tools_dir=$(cd "$(dirname "$0")" && pwd)
eval "$("$tools_dir/containers.sh" env)"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/pinpoint-export-operator
image=localhost/pinpoint-export-operator-base:bookworm-python3
log() { echo "base-image: $*" >&2; }

suite=bookworm
# minbase: the essential packages only; python3-venv for the Dockerfile's build stage.
packages=python3,python3-venv,ca-certificates
# Neither documentation nor translations in an image (the copyright files stay).
dpkg_opts=(
  'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/lintian/*'
)
# Merged /usr made by mmdebstrap's hook rather than by the usrmerge package, which pulls in perl
# (about 47 MB) for a one-time conversion.
hooks=(/usr/share/mmdebstrap/hooks/merged-usr)
recipe="$suite minbase $packages ${dpkg_opts[*]} ${hooks[*]##*/}"
recipe_id=$(printf %s "$recipe" | sha256sum | cut -c1-12)
tarball=$cache/base-image/$suite-$recipe_id.tar

# The host's Debian mirrors (a local mirror or proxy is often all a build machine can reach),
# or Debian's own when the host has none for this suite.
mirrors() {
  local host
  host=$(apt-get indextargets --format '$(ORIGIN) $(REPO_URI) $(RELEASE) $(COMPONENT)' 2>/dev/null |
    awk -v s="$suite" '$1 == "Debian" && $3 ~ "^" s && $4 == "main" { print "deb " $2 " " $3 " main" }' |
    sort -u)
  if [[ -n $host ]]; then
    echo "$host"
  else
    printf 'deb http://deb.debian.org/debian %s main\n' "$suite" "$suite-updates"
    printf 'deb http://deb.debian.org/debian-security %s-security main\n' "$suite"
  fi
}

mkdir -p "$cache/base-image"
# One build at a time (make image and the sandbox may both ask for the base).
exec 9>"$cache/base-image/.lock"
flock 9

if [[ ${1:-} == --rebuild ]]; then rm -f "$tarball"; fi
if [[ ! -f $tarball ]]; then
  rm -rf "$tarball.tmp"  # an interrupted build's
  start=$SECONDS
  log "building $suite with $packages ..."
  opts=()
  for o in "${dpkg_opts[@]}"; do opts+=(--dpkgopt="$o"); done
  for h in "${hooks[@]}"; do opts+=(--hook-dir="$h"); done
  # Mirrors as one sources.list on stdin ("-"): several suites, one argument.
  # Debian's keys, not the host's apt keys (an Ubuntu host trusts only Ubuntu's).
  mirrors | mmdebstrap --quiet --format=tar --variant=minbase --include="$packages" "${opts[@]}" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$suite" "$tarball.tmp" -
  mv "$tarball.tmp" "$tarball"
  # Older recipes' tarballs are never used again.
  find "$(dirname "$tarball")" -name "$suite-*.tar" ! -name "${tarball##*/}" -delete
  log "built $tarball in $((SECONDS - start))s"
fi

# The label names the recipe, so a stored image from an older recipe is replaced.
label=dev.pinpoint-export-operator.base-recipe
if [[ $(podman image inspect --format "{{index .Labels \"$label\"}}" "$image" 2>/dev/null) != "$recipe_id" ]]; then
  log "importing $tarball as $image"
  # What python:3.11-slim-bookworm sets too, so that the Dockerfile runs the same on both.
  podman import --quiet \
    --change "LABEL $label=$recipe_id" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$tarball" "$image" >/dev/null
fi
echo "$image"
