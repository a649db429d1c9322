#!/usr/bin/env bash
# Open the monitoring issue with the monitor's report, or, when one is open, replace its body with the new report and
# comment with the new verdict (so watchers hear of it): one open issue, however many days the alarm lasts.
# `make monitoring-issue` runs it; it needs `gh`, GH_TOKEN (issues: write) and jq. The verdict (verdict.json, written
# by `monitor` beside the report) gives the one-line summary.
set -euo pipefail

report=${1:-reports/monitoring/report.md}
label=model-monitoring
title="Model monitoring: drift or decay beyond the thresholds"
summary=$(jq -er '.summary' "$(dirname "$report")/verdict.json")

gh label create "$label" --color D93F0B --description "Opened by the monitor workflow" --force >/dev/null
number=$(gh issue list --label "$label" --state open --limit 1 --json number --jq '.[0].number // empty')
if [ -n "$number" ]; then
    gh issue edit "$number" --body-file "$report" >/dev/null
    gh issue comment "$number" --body "The monitor ran again ($(date -u +%Y-%m-%dT%H:%MZ)): $summary The report above is updated." >/dev/null
    echo "updated issue #$number"
else
    gh issue create --title "$title" --label "$label" --body-file "$report"
fi
