#!/usr/bin/env bash
# Build the serving image from the Dockerfile: the package's runtime from uv.lock plus the model in models/, labelled
# with the git commit, the model version and the raw data's hash. `make image` runs it; settings are environment
# variables:
#   IMAGE        repository, without tag (the Makefile passes the project's)
#   TAG          default: the model version from models/metadata.json, else the short git commit
#   BUILDER      docker, podman or buildah, or a command ending with one ("sudo buildah"); default: the first that
#                works, in that order. buildah runs with --isolation chroot (BUILDAH_ISOLATION), so it needs no daemon.
#   BASE_IMAGE   the Dockerfile's base image (default: its ARG, the official python slim image)
#   PLATFORMS    the platforms to build, comma-separated, e.g. linux/amd64,linux/arm64 (default: the host's). A platform
#                other than the host's runs the build's RUN steps under QEMU (binfmt_misc). Several make one image for
#                all of them (a manifest list), which docker's image store cannot hold: with docker, buildx pushes it
#                as it builds (log in first) and `make push-image` reads its digest; podman and buildah keep a local
#                manifest list that `make push-image` pushes.
#   BUILD_FLAGS  more arguments for the builder (--no-cache, ...)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${IMAGE:?set IMAGE to the image repository, without tag}"
for file in models/model.onnx models/metadata.json; do
    if [ ! -f "$file" ]; then
        echo "error: $file is missing: run 'make repro' (or 'make pull') first" >&2
        exit 1
    fi
done

# Model version, the commit that trained it and the raw data's hash, as the export stage recorded them.
meta=$(uv run --frozen python -c '
import json
metadata = json.load(open("models/metadata.json", encoding="utf-8"))
lineage = metadata.get("lineage") or {}
print(metadata.get("version") or "")
print(lineage.get("git_commit") or "")
print(lineage.get("data.raw.md5") or "")
')
model_version=$(sed -n 1p <<<"$meta")
model_commit=$(sed -n 2p <<<"$meta")
data_hash=$(sed -n 3p <<<"$meta")

revision=$(git rev-parse HEAD 2>/dev/null || true)
if [ -n "$revision" ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    echo "warning: uncommitted changes: the image's revision label ($revision) does not describe all of its code" >&2
fi
tag=${TAG:-${model_version:-${revision:0:12}}}
tag=$(printf '%s' "${tag:-dev}" | tr -c 'A-Za-z0-9_.-' '-')
ref="$IMAGE:$tag"

# shellcheck source=scripts/container-tool.sh
. "$(dirname "${BASH_SOURCE[0]}")/container-tool.sh"
pick_builder docker podman buildah
kind=${BUILDER##* }
platforms=${PLATFORMS:-}
platform='[a-z0-9_]+/[a-z0-9_]+(/[a-z0-9]+)?'
if [ -n "$platforms" ] && ! [[ "$platforms" =~ ^$platform(,$platform)*$ ]]; then
    echo "error: PLATFORMS='$platforms' is not a comma-separated list of os/arch[/variant], e.g. linux/amd64,linux/arm64" >&2
    exit 1
fi
iidfile=$(mktemp)
trap 'rm -f "$iidfile"' EXIT
output=(--tag "$ref" --iidfile "$iidfile")
case "${kind##*/}" in
    docker)
        build=(build)
        if [[ "$platforms" == *,* ]]; then
            # buildx (BuildKit) builds every platform and pushes the manifest list: the classic image store keeps one.
            build=(buildx build)
            output=(--tag "$ref" --push)  # one image id per platform: no --iidfile
        fi
        ;;
    # The docker format keeps HEALTHCHECK (the OCI image format has no such field).
    podman) build=(build --format docker) ;;
    buildah) build=(build --format docker --isolation "${BUILDAH_ISOLATION:-chroot}") ;;
    *)
        echo "error: BUILDER=$BUILDER is not docker, podman or buildah" >&2
        exit 1
        ;;
esac
if [ -n "$platforms" ]; then
    build+=(--platform "$platforms")
fi
if [[ "$platforms" == *,* && "${kind##*/}" != docker ]]; then
    # A local manifest list under the image's name; a list left by an earlier build would keep its images.
    # shellcheck disable=SC2086 # BUILDER is a word list
    $BUILDER manifest rm "$ref" >/dev/null 2>&1 || true
    output=(--manifest "$ref")  # one image id per platform: no --iidfile
fi

args=(
    --file Dockerfile "${output[@]}"
    --build-arg "REVISION=${revision:-unknown}"
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    --build-arg "MODEL_VERSION=${model_version:-unknown}"
    --build-arg "MODEL_COMMIT=${model_commit:-unknown}"
    --build-arg "DATA_HASH=${data_hash:-unknown}"
)
if [ -n "${BASE_IMAGE:-}" ]; then
    args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
fi
echo "building $ref for ${platforms:-the host platform} with $BUILDER (model $model_version, data $data_hash, commit ${revision:-none})"
# shellcheck disable=SC2086 # BUILDER and BUILD_FLAGS are word lists
$BUILDER "${build[@]}" "${args[@]}" ${BUILD_FLAGS:-} .
echo "image: $ref"
if [ -s "$iidfile" ]; then
    echo "id: $(cat "$iidfile")"
fi
