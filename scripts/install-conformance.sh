#!/usr/bin/env bash
# Installs the OCI distribution-spec conformance suite that cmd/as-serve's
# conformance test runs, as ~/.cache/artifact-store/bin/oci-conformance (or
# $1/oci-conformance), built from the Go module proxy. The suite is its own
# Go module (github.com/opencontainers/distribution-spec/conformance, a main
# package with no tagged releases), so it is pinned by pseudo-version.
set -euo pipefail
version=${OCI_CONFORMANCE_VERSION:-v0.0.0-20260831232431-97274622c111}
dir=${1:-${HOME}/.cache/artifact-store/bin}
mod=github.com/opencontainers/distribution-spec/conformance
if [ -x "$dir/oci-conformance" ] && [ "$(go version -m "$dir/oci-conformance" 2>/dev/null | awk '$1=="mod"{print $3}')" = "$version" ]; then
  echo "oci-conformance $version already in $dir"
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "building $mod@$version into $dir" >&2
GOFLAGS=-mod=mod GOBIN="$tmp" go install "$mod@$version"
mv "$tmp/conformance" "$dir/oci-conformance"
echo "oci-conformance $version in $dir"
