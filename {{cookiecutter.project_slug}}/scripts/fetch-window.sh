#!/usr/bin/env bash
# Download what the monitor reads into a fresh folder: the servers' prediction logs (JSON lines, shipped from each
# pod's PREDICTION_LOG_DIR to a bucket) and, if there is one, the folder where ground-truth labels land (CSV files:
# request_id, index, and the target column). Any location `dvc get-url` reads works: s3://, gs://, azure://,
# https://, or a local path. `make fetch-window PREDICTION_LOG_URL=… [LABELS_URL=…]` runs it.
set -euo pipefail

predictions_url=${1:-} labels_url=${2:-} into=${3:-monitoring}
if [ -z "$predictions_url" ]; then
    echo "error: PREDICTION_LOG_URL is not set: where are the servers' prediction logs?" >&2
    exit 2
fi
rm -rf "$into"
mkdir -p "$into"
uv run --frozen dvc get-url "$predictions_url" "$into/predictions"
if [ -n "$labels_url" ]; then
    uv run --frozen dvc get-url "$labels_url" "$into/labels"
else
    mkdir -p "$into/labels"
fi
echo "window: $(find "$into/predictions" -name '*.jsonl' | wc -l) log file(s), $(find "$into/labels" -name '*.csv' | wc -l) label file(s) in $into/"
