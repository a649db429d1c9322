#!/usr/bin/env bash
# Push the commit that `make promote` or `make rollback` made to main (`make push-main`). When main moved meanwhile
# (another environment's promotion, a merge), rebase on it and push again; each environment's deploy jobs run one at
# a time, so a rebase never meets a change to the same overlay. Any other refusal ends it with a hint: a protected
# main takes the push only from a bypass actor, the release App (README: "Pushing to a protected main").
set -euo pipefail

branch=${PUSH_BRANCH:-main}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for attempt in 1 2 3 4 5; do
    if git push origin "HEAD:refs/heads/$branch" 2> >(tee "$log" >&2); then
        exit 0
    fi
    if ! grep -q -e 'non-fast-forward' -e 'fetch first' -e 'cannot lock ref' "$log"; then
        if grep -q -e 'GH013' -e 'protected branch' -e 'rule violations' "$log"; then
            echo "::error::$branch is protected and this token may not push to it: set the variable RELEASE_APP_CLIENT_ID and the secret RELEASE_APP_PRIVATE_KEY of a GitHub App that the ruleset lets bypass (README: Pushing to a protected main)"
        fi
        exit 1
    fi
    echo "main moved since this job checked it out: rebasing (attempt $attempt)"
    git pull --quiet --rebase origin "$branch"
done
echo "::error::could not push to $branch after 5 attempts"
exit 1
