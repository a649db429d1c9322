#!/usr/bin/env bash
# Smoke test of a pushed image before it goes to staging: start it by digest (read-only root filesystem, as in the
# cluster) and wait until /readyz answers 200, which the server only does once it has loaded its model and checked its
# opset, inputs and golden predictions. `make smoke DIGEST=…` runs it. Settings are environment variables:
#   BUILDER  docker or podman (default: the first that works); SMOKE_PORT (default 18080); SMOKE_TIMEOUT (default 60 s)
set -euo pipefail

ref=${1:-}
if ! [[ "$ref" =~ @sha256:[0-9a-f]{64}$ ]]; then
    echo "error: '$ref' is not an image by digest (set DIGEST=)" >&2
    exit 1
fi
# shellcheck source=scripts/container-tool.sh
. "$(dirname "${BASH_SOURCE[0]}")/container-tool.sh"
pick_builder docker podman
port=${SMOKE_PORT:-18080}
# shellcheck disable=SC2086 # BUILDER is a word list
container=$($BUILDER run --detach --rm --read-only --publish "127.0.0.1:$port:8080" "$ref")
# shellcheck disable=SC2086
trap '$BUILDER rm --force "$container" >/dev/null 2>&1 || true' EXIT
deadline=$((SECONDS + ${SMOKE_TIMEOUT:-60}))
until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$port/readyz" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "error: $ref did not become ready on :$port within ${SMOKE_TIMEOUT:-60} s" >&2
        # shellcheck disable=SC2086
        $BUILDER logs "$container" >&2 || true
        exit 1
    fi
    sleep 1
done
echo "smoke: $ref is ready"
