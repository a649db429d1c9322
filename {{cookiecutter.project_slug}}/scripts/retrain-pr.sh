#!/usr/bin/env bash
# Open the retraining pull request, or update the open one. On branch retrain/auto, reset to the current commit
# (main): the window's labelled rows are added to the raw data (`retrain-data`), which becomes its next DVC version;
# the pipeline is reproduced so dvc.lock and the metrics match, data and artifacts are pushed to the DVC remote, and
# the branch is force-pushed with one commit. The pull request carries the monitoring report; pr-training then trains,
# judges and reports it against main like any change. `make retrain-pr` runs it; needs `gh` and GH_TOKEN.
#   retrain-pr.sh PACKAGE WINDOW_DIR SINCE REPORT
set -euo pipefail

package=$1 window=$2 since=$3 report=$4
branch=${RETRAIN_BRANCH:-retrain/auto}
label=retraining
run="uv run --frozen"

git switch --quiet --force-create "$branch"
counts="${TMPDIR:-/tmp}/retrain-data.json"
$run "$package" retrain-data --predictions "$window/predictions" --labels "$window/labels" --since "$since" --json \
    | tee "$counts"
added=$(jq -er '.added' "$counts")  # {"added": N, "known": K, "window": W, "raw": path}
if [ "$added" -eq 0 ]; then
    echo "::notice::No new labelled rows in the window: no retraining pull request (the monitoring issue has the report)"
    exit 0
fi

$run dvc add --quiet data/raw/data.csv
$run dvc repro
$run dvc push
git add --all
git commit --quiet -m "Retrain on $added labelled rows from the monitoring window (since $since)" \
    -m "Opened by the monitor workflow: data/raw/data.csv has the window's labelled rows as a new DVC version."
git push --force origin "HEAD:refs/heads/$branch"

body="${TMPDIR:-/tmp}/retrain-pr.md"
{
    echo "The monitor found drift or decay beyond the thresholds in \`params.yaml\`. This pull request adds the"
    echo "$added labelled rows of the window (since $since) to \`data/raw/data.csv\` as a new DVC version and retrains;"
    echo "the training report comparing the retrained model with \`main\` follows as a comment."
    echo
    cat "$report"
} > "$body"
gh label create "$label" --color 0E8A16 --description "Opened by the monitor workflow" --force >/dev/null
number=$(gh pr list --head "$branch" --state open --limit 1 --json number --jq '.[0].number // empty')
if [ -n "$number" ]; then
    gh pr edit "$number" --body-file "$body" >/dev/null
    echo "updated pull request #$number"
else
    gh pr create --base main --head "$branch" --label "$label" --body-file "$body" \
        --title "Retrain on the monitoring window (since $since)"
fi
