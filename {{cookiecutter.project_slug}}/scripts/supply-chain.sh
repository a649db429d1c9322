#!/usr/bin/env bash
# What the release workflow attaches to a pushed image, always by digest (never by tag, which can move):
#   supply-chain.sh sbom REGISTRY/NAME@sha256:…   SBOM with syft (SPDX JSON, sbom.spdx.json), attached as a signed
#                                                 attestation with cosign
#   supply-chain.sh sign REGISTRY/NAME@sha256:…   keyless signature with cosign (Sigstore; the CI's OIDC identity)
# SYFT and COSIGN name the binaries (default: syft and cosign on PATH). `make sbom` and `make sign` run it.
set -euo pipefail

action=${1:-}
ref=${2:-}
if ! [[ "$ref" =~ ^[a-z0-9][a-z0-9./_:-]*@sha256:[0-9a-f]{64}$ ]]; then
    echo "error: '$ref' is not registry/name@sha256:<64 hex digits> (set DIGEST=)" >&2
    exit 1
fi
syft=${SYFT:-syft}
cosign=${COSIGN:-cosign}
case "$action" in
    sbom)
        "$syft" scan "registry:$ref" --output "spdx-json=sbom.spdx.json"
        "$cosign" attest --yes --type spdxjson --predicate sbom.spdx.json "$ref"
        ;;
    sign)
        "$cosign" sign --yes "$ref"
        ;;
    *)
        echo "usage: $0 sbom|sign REGISTRY/NAME@sha256:…" >&2
        exit 2
        ;;
esac
