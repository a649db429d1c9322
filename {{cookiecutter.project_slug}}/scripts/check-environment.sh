#!/usr/bin/env bash
# Refuse to deploy through a GitHub environment that nobody reviews (`make check-environment ENV=prod`). A job that
# names an environment waits for its required reviewers, but where the environment has none (GitHub Free, Pro and
# Team give private repositories no required reviewers, and Free no environments at all; or nobody set them up) the
# job runs at once, unapproved. This asks GitHub's API what the environment requires and fails unless a
# required-reviewers rule is there. ALLOW_UNREVIEWED_PROD=true accepts an unreviewed environment with a warning (a team's
# explicit choice). Needs gh with GH_TOKEN (actions: read).
set -euo pipefail

env=${1:?usage: check-environment.sh ENVIRONMENT}
: "${GITHUB_REPOSITORY:?set GITHUB_REPOSITORY to owner/name}"
answer=$(mktemp)
trap 'rm -f "$answer"' EXIT
if gh api "repos/$GITHUB_REPOSITORY/environments/$env" > "$answer" 2>&1; then
    reviewers=$(jq '[.protection_rules[]? | select(.type == "required_reviewers")] | length' "$answer")
    problem="the environment $env has no required reviewers"
else
    reviewers=0
    problem="the environment $env could not be read ($(tr '\n' ' ' < "$answer"))"
fi
if [ "$reviewers" -gt 0 ]; then
    echo "$env: deployments wait for required reviewers"
    exit 0
fi
if [ "${ALLOW_UNREVIEWED_PROD:-}" = true ]; then
    echo "::warning::$problem: deploying unreviewed, as the variable ALLOW_UNREVIEWED_PROD=true allows"
    exit 0
fi
echo "::error::$problem, so this job ran without anyone's approval: refusing to deploy. Add required reviewers (Settings > Environments > $env; private repositories need GitHub Enterprise for them), or set the repository variable ALLOW_UNREVIEWED_PROD=true to deploy unreviewed on purpose"
exit 1
