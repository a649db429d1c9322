#!/usr/bin/env bash
# Post a pull request's report as one comment, updated in place on every push (`cml comment update`). Run by the
# trusted comment workflow (`make post-report`), which holds a write token and reads the report artifact that the
# pull request's own run wrote, so nothing in the artifact is believed on its own:
#   - the pull request is found through GitHub's API from the triggering run's head repository, branch and commit
#     (HEAD_REPOSITORY, HEAD_BRANCH, HEAD_SHA, which GitHub sets in the workflow_run event, not the artifact);
#   - the number in the artifact must name that same pull request, or nothing is posted and the job fails;
#   - when no open pull request has that head any more (closed, or pushed to since), there is nothing to post.
# CML is told the repository (--repo; it needs no git remote), never uploads images unless PUBLISH_IMAGES=true (its
# asset host is public), and sends no telemetry.
#   post-report.sh REPORT_DIR WATERMARK_TITLE   (REPORT_DIR holds report.md and pr-number)
# Also used by the template's own comment workflow: keep this file free of template syntax.
set -euo pipefail

dir=${1:?usage: post-report.sh REPORT_DIR WATERMARK_TITLE}
title=${2:?usage: post-report.sh REPORT_DIR WATERMARK_TITLE}
: "${GITHUB_REPOSITORY:?} ${HEAD_REPOSITORY:?} ${HEAD_BRANCH:?} ${HEAD_SHA:?}"
export ITERATIVE_DO_NOT_TRACK=1

claimed=$(head -c 16 "$dir/pr-number" | tr -d '[:space:]')
if ! [[ "$claimed" =~ ^[0-9]+$ ]]; then
    echo "::error::the report artifact has no valid pull-request number"
    exit 1
fi
if ! [[ "$HEAD_SHA" =~ ^[0-9a-f]{40}$ ]]; then
    echo "::error::HEAD_SHA '$HEAD_SHA' is not a commit id"
    exit 1
fi

pulls=$(mktemp)
trap 'rm -f "$pulls"' EXIT
gh api --method GET "repos/$GITHUB_REPOSITORY/pulls" -f state=open -f per_page=100 \
    -f "head=${HEAD_REPOSITORY%%/*}:$HEAD_BRANCH" > "$pulls"
found=$(jq -r --arg repo "$HEAD_REPOSITORY" --arg sha "$HEAD_SHA" \
    '[.[] | select(.head.repo.full_name == $repo and .head.sha == $sha) | .number] | map(tostring) | join(" ")' \
    "$pulls")
if [ -z "$found" ]; then
    echo "::notice::no open pull request has the head $HEAD_REPOSITORY:$HEAD_BRANCH at ${HEAD_SHA:0:12} (closed, or pushed to since): nothing to post"
    exit 0
fi
if [ "$found" != "$claimed" ]; then
    echo "::error::the artifact names pull request $claimed, but the run's head belongs to pull request $found: not posted"
    exit 1
fi

publish=--no-publish
if [ "${PUBLISH_IMAGES:-}" = true ]; then
    publish=--publish
fi
cml comment update --repo "${GITHUB_SERVER_URL:-https://github.com}/$GITHUB_REPOSITORY" --target "pr/$found" \
    --watermark-title "$title" "$publish" "$dir/report.md"
echo "posted the report on pull request #$found"
