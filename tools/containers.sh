#!/usr/bin/env bash
# The project's container toolchain: podman, buildah and runc from Debian's packages, with a
# configuration of the project's own under its cache directory. Nothing is written to
# /etc/containers: every caller (make, the sandbox's node agent, the tests) points podman at the
# three files below through the environment that `tools/containers.sh env` prints.
#
# Usage:
#   tools/containers.sh            install what is missing and write the configuration
#   tools/containers.sh env        the same (quietly), then print `export` lines for the shell
#   tools/containers.sh exec CMD   the same, then run CMD (e.g. podman images) in that environment
#
# Idempotent: a warm run installs nothing and rewrites no file whose content is unchanged.
set -euo pipefail

cache=${XDG_CACHE_HOME:-$HOME/.cache}/pinpoint-export-operator
conf_dir=$cache/containers
graphroot=$conf_dir/storage
# Run-time state (locks, the "alive" file by which podman notices a reboot) belongs on /run.
# Keyed by the cache directory, so two caches (a cold-build measurement, another checkout's)
# never share state with each other.
run_dir=/run/pinpoint-export-operator/$(printf %s "$cache" | cksum | cut -d' ' -f1)

# Debian's names. crun is not used: it fails on hosts that mix cgroup v1 and v2; runc does not.
# debian-archive-keyring: the base image is Debian's, also when the host is Ubuntu.
packages=(podman buildah runc conmon mmdebstrap uidmap slirp4netns fuse-overlayfs
  containernetworking-plugins golang-github-containers-common debian-archive-keyring)

log() { echo "containers: $*" >&2; }

install_packages() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  log "installing ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >&2
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# overlay where the kernel mounts it on the graph root's file system (not when that is itself an
# overlay, as inside many CI containers); otherwise vfs, which works anywhere, only bigger.
storage_driver() {
  if [[ -n ${PPE_STORAGE_DRIVER:-} ]]; then
    echo "$PPE_STORAGE_DRIVER"
    return
  fi
  local probe
  probe=$(mktemp -d "$conf_dir/overlay-probe.XXXXXX")
  mkdir "$probe"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
    "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    echo overlay
  else
    echo vfs
  fi
  rm -rf "$probe"
}

# Writes $1 from stdin only if its content changed, so that nothing depending on it rebuilds.
write_if_changed() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

write_config() {
  mkdir -p "$conf_dir" "$graphroot" "$run_dir"
  local driver
  # The driver is chosen once: changing it later would orphan the images already stored.
  if [[ -f $conf_dir/storage.conf ]]; then
    driver=$(sed -n 's/^driver = "\(.*\)"$/\1/p' "$conf_dir/storage.conf")
  fi
  driver=${driver:-$(storage_driver)}

  write_if_changed "$conf_dir/containers.conf" <<EOF
# Written by tools/containers.sh; podman reads it through CONTAINERS_CONF.
[containers]
# Raising resource limits above the caller's fails on some hosts: set them once here.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
# Host networking: the sandbox's servers listen on the host, and no CNI bridge is configured.
netns = "host"
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$conf_dir/events.log"
tmp_dir = "$run_dir/libpod"
# Images are built here or imported, never pulled: no registry is assumed reachable.
pull_policy = "never"

[network]
network_config_dir = "$conf_dir/networks"
EOF

  write_if_changed "$conf_dir/storage.conf" <<EOF
# Written by tools/containers.sh; podman and buildah read it through CONTAINERS_STORAGE_CONF.
[storage]
driver = "$driver"
graphroot = "$graphroot"
runroot = "$run_dir/storage"
EOF

  write_if_changed "$conf_dir/registries.conf" <<EOF
# Written by tools/containers.sh; read through CONTAINERS_REGISTRIES_CONF.
# No search registries: a short name never resolves to a registry, only to a local image
# (localhost/...); anything else must be fully qualified.
unqualified-search-registries = []
short-name-mode = "enforcing"
EOF
}

print_env() {
  cat <<EOF
export CONTAINERS_CONF=$conf_dir/containers.conf
export CONTAINERS_STORAGE_CONF=$conf_dir/storage.conf
export CONTAINERS_REGISTRIES_CONF=$conf_dir/registries.conf
EOF
}

install_packages
write_config
case ${1:-} in
  "") log "configuration in $conf_dir" ;;
  env) print_env ;;
  exec)
    shift
    eval "$(print_env)"
    exec "$@"
    ;;
  *)
    echo "usage: $0 [env | exec COMMAND...]" >&2
    exit 2
    ;;
esac
