#!/usr/bin/env bash
# Push an image that `make image` built and print the digest the registry stored it under, the one identity that is
# signed, attested and promoted afterwards (`make push-image`). Settings are environment variables:
#   REF        the image to push, registry/name:tag (the `image:` line of `make image`)
#   BUILDER    docker, podman or buildah, or a command ending with one; default: the first that works, in that order
#   PLATFORMS  as `make image` had it. Several platforms: the digest is the manifest list's (the index of one image
#              per platform), which a pod pulls its own platform's image through. With docker, buildx pushed it while
#              building, so this only reads its digest back from the registry.
# Prints `image: <registry/name>` and `digest: sha256:…`; log in to the registry first.
set -euo pipefail

: "${REF:?set REF to the image to push, registry/name:tag}"
repo=${REF%:*}
# shellcheck source=scripts/container-tool.sh
. "$(dirname "${BASH_SOURCE[0]}")/container-tool.sh"
pick_builder docker podman buildah
kind=${BUILDER##* }
several=false
if [[ "${PLATFORMS:-}" == *,* ]]; then
    several=true
fi
# shellcheck disable=SC2086 # BUILDER is a word list ("sudo buildah")
case "${kind##*/}" in
    docker)
        if $several; then
            digest=$($BUILDER buildx imagetools inspect "$REF" | sed -n 's/^Digest: *//p' | head -n 1)
        else
            $BUILDER push "$REF" >&2
            digest=$($BUILDER image inspect "$REF" | python3 -c '
import json, sys
repo = sys.argv[1]
digests = [d for image in json.load(sys.stdin) for d in image.get("RepoDigests") or []]
print(next((d.split("@", 1)[1] for d in digests if d.split("@", 1)[0] == repo), ""))
' "$repo")
        fi
        ;;
    podman | buildah)
        digestfile=$(mktemp)
        trap 'rm -f "$digestfile"' EXIT
        if $several; then
            # The list and every image in it, as a Docker manifest list (the images are Docker-format, see Dockerfile).
            $BUILDER manifest push --all --format v2s2 --digestfile "$digestfile" "$REF" "docker://$REF" >&2
        else
            $BUILDER push --digestfile "$digestfile" "$REF" >&2
        fi
        digest=$(cat "$digestfile")
        ;;
    *)
        echo "error: BUILDER=$BUILDER is not docker, podman or buildah" >&2
        exit 1
        ;;
esac
if ! [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
    echo "error: the registry returned no digest for $REF (got '${digest}')" >&2
    exit 1
fi
echo "image: $repo"
echo "digest: $digest"
