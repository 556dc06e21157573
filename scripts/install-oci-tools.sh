#!/usr/bin/env bash
# Installs the OCI tools that the independent checks of as-oci run
# (cmd/as-oci oci_peers_test.go): oras and crane, built from the Go module
# proxy into ~/.cache/artifact-store/bin (or $1). They are test peers only:
# nothing links against them. The first build takes a minute or two; later
# runs are instant (the binary's module version is checked).
set -euo pipefail
oras_version=${ORAS_VERSION:-v1.3.6}
crane_version=${CRANE_VERSION:-v0.22.1}
dir=${1:-${HOME}/.cache/artifact-store/bin}
mkdir -p "$dir"

# install NAME PACKAGE VERSION: go install PACKAGE@VERSION into $dir unless
# $dir/NAME is already that version.
install() {
  local name=$1 pkg=$2 version=$3
  if [ -x "$dir/$name" ] && [ "$(go version -m "$dir/$name" 2>/dev/null | awk '$1=="mod"{print $3}')" = "$version" ]; then
    echo "$name $version already in $dir"
    return
  fi
  echo "building $name $version into $dir" >&2
  GOFLAGS=-mod=mod GOBIN="$dir" go install "$pkg@$version"
  echo "$name $version installed in $dir"
}
install oras oras.land/oras/cmd/oras "$oras_version"
install crane github.com/google/go-containerregistry/cmd/crane "$crane_version"
