#!/usr/bin/env bash
# Builds the sandbox's binaries from the Go module proxy into a cache outside the repository.
# Idempotent: a binary that is already there is reused, so a warm run takes seconds.
# Usage: tools/build.sh [name ...]   (default: all)
#        tools/build.sh --which name  (build if needed, then print its path: for make's recipes)
set -euo pipefail

which=false
if [[ ${1:-} == --which ]]; then
  which=true
  shift
  exec 3>&1 1>&2  # progress to stderr, the path alone to stdout
fi

tools_dir=$(cd "$(dirname "$0")" && pwd)
bin_dir=${PPE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pinpoint-export-operator/bin}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$bin_dir"

# The version a tool module pins, read from its go.mod.
pinned() { awk -v m="$2" '$1 == "require" && $2 == m { print $3 } $1 == m && $2 ~ /^v/ { print $2 }' "$tools_dir/$1/go.mod" | head -n1; }

k8s_version=$(pinned kubernetes k8s.io/kubernetes)
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
build_date=2000-01-01T00:00:00Z  # fixed, so rebuilds are reproducible
# Stamped the way upstream's hack/lib/version.sh does: Helm and kubectl read these.
k8s_ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

# name  module-dir  package  version  ldflags  [build tags]
targets() {
  local etcd_v helm3_v helm4_v vgw_v kstatus_v actionlint_v
  etcd_v=$(pinned etcd go.etcd.io/etcd/server/v3)
  helm3_v=$(pinned helm3 helm.sh/helm/v3)
  helm4_v=$(pinned helm4 helm.sh/helm/v4)
  vgw_v=$(pinned versitygw github.com/versity/versitygw)
  # The project's own checker: named after the kstatus (cli-utils) release it computes with.
  kstatus_v=$(pinned kstatus sigs.k8s.io/cli-utils)
  actionlint_v=$(pinned actionlint github.com/rhysd/actionlint)
  printf '%s\t%s\t%s\t%s\t%s\n' \
    etcd etcd go.etcd.io/etcd/server/v3 "$etcd_v" "-s -w" \
    kube-apiserver kubernetes k8s.io/kubernetes/cmd/kube-apiserver "$k8s_version" "$k8s_ldflags" \
    kube-controller-manager kubernetes k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_version" "$k8s_ldflags" \
    kubectl kubernetes k8s.io/kubernetes/cmd/kubectl "$k8s_version" "$k8s_ldflags" \
    helm3 helm3 helm.sh/helm/v3/cmd/helm "$helm3_v" "-s -w -X helm.sh/helm/v3/internal/version.version=$helm3_v" \
    helm4 helm4 helm.sh/helm/v4/cmd/helm "$helm4_v" "-s -w -X helm.sh/helm/v4/internal/version.version=$helm4_v" \
    versitygw versitygw github.com/versity/versitygw/cmd/versitygw "$vgw_v" "-s -w" \
    kstatus kstatus pinpoint-export-operator/tools/kstatus "$kstatus_v" "-s -w" \
    actionlint actionlint github.com/rhysd/actionlint/cmd/actionlint "$actionlint_v" \
    "-s -w -X github.com/rhysd/actionlint.version=$actionlint_v"
  # promtool (module v0.3XY.Z is Prometheus 3.XY.Z), without the service-discovery plugins
  # (clouds' SDKs, most of its build time): rules tests need none of them.
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' \
    promtool promtool github.com/prometheus/prometheus/cmd/promtool \
    "$(pinned promtool github.com/prometheus/prometheus)" "-s -w" remove_all_sd
}

wanted=" $* "
total_start=$SECONDS
while IFS=$'\t' read -r name dir pkg version ldflags tags; do
  [[ $# -eq 0 || $wanted == *" $name "* ]] || continue
  out="$bin_dir/$name-$version"
  if $which; then echo "$out" >&3; fi
  if [[ -x $out ]]; then
    echo "tools: $name $version cached ($out)"
    continue
  fi
  start=$SECONDS
  echo "tools: building $name $version ..."
  (cd "$tools_dir/$dir" && go build -trimpath -tags "${tags:-}" -ldflags "$ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  echo "tools: built $name $version in $((SECONDS - start))s"
done < <(targets)
echo "tools: done in $((SECONDS - total_start))s ($bin_dir)"
