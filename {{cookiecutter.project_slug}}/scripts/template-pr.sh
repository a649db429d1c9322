#!/usr/bin/env bash
# Open the template-update pull request, or update the open one. On branch template/update, reset to the current commit
# (main): `make template-update` applies the template's changes since the commit in .cruft.json, and the branch is
# force-pushed with one commit, so the pull request always holds main plus the newest template. The normal pull-request
# checks (ci, pr-training) run on it. When the update conflicts with the project's own changes nothing is committed:
# the job fails and names the files (resolve them locally with `make template-update`). Needs `gh` and GH_TOKEN.
#   template-pr.sh
set -euo pipefail

branch=${TEMPLATE_BRANCH:-template/update}
label=template-update

if make --no-print-directory template-check; then
    echo "::notice::The project is at its template's newest commit: no template-update pull request"
    exit 0
fi
git switch --quiet --force-create "$branch"
status=0
make --no-print-directory template-update || status=$?
if [ "$status" -ne 0 ]; then
    echo "::error::The template's update does not apply cleanly (see above): nothing committed; run \`make template-update\` locally and resolve the .rej files"
    exit 1
fi
if [ -z "$(git status --porcelain)" ]; then
    echo "::notice::The template moved, but nothing it changed is in this project: no pull request"
    exit 0
fi
old=$(git show HEAD:.cruft.json | jq -r '.commit')
new=$(jq -r '.commit' .cruft.json)
template=$(jq -r '.template' .cruft.json)
git add --all
git commit --quiet -m "Update from the template ($template ${old:0:12} -> ${new:0:12})" \
    -m "Opened by the template-update workflow: make template-update (cruft update) applied the template's changes."
git push --force origin "HEAD:refs/heads/$branch"

body="${TMPDIR:-/tmp}/template-pr.md"
{
    echo "The template this project was generated from ($template) has moved from \`${old:0:12}\` to \`${new:0:12}\`."
    echo "This pull request applies its changes since then (\`make template-update\`, cruft); the files the team owns"
    echo "after the bake (\`skip\` in \`.cruft.json\`: the data, its contract, dvc.lock) are left alone. Review it like"
    echo "any change: the usual checks and the training report run on it."
    echo
    echo '```'
    git diff --stat HEAD~1 HEAD
    echo '```'
} > "$body"
gh label create "$label" --color 5319E7 --description "Opened by the template-update workflow" --force >/dev/null
number=$(gh pr list --head "$branch" --state open --limit 1 --json number --jq '.[0].number // empty')
if [ -n "$number" ]; then
    gh pr edit "$number" --body-file "$body" >/dev/null
    echo "updated pull request #$number"
else
    gh pr create --base main --head "$branch" --label "$label" --body-file "$body" \
        --title "Update from the template (${new:0:12})"
fi
