#!/usr/bin/env bash
# Register replearn's deployments with a Prefect server and start a worker for them.
#
#   deployments/deploy.sh                          # what `make deploy` runs: every deployment, then a worker
#   deployments/deploy.sh --name word2vec          # only some deployments (any `prefect deploy` options)
#   deployments/deploy.sh --no-worker              # register only
#
# The server is $PREFECT_API_URL (default http://127.0.0.1:4200/api, i.e. `make servers`).
# The worker runs flows with this shell's environment: runs track into $MLFLOW_TRACKING_URI,
# which defaults to http://127.0.0.1:5000 when an MLflow server answers there (`make servers`),
# else to the SQLite store under the data home ($REPLEARN_HOME or ./.replearn).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"
POOL="${REPLEARN_WORK_POOL:-replearn-process}"
export PREFECT_API_URL="${PREFECT_API_URL:-http://127.0.0.1:4200/api}"

worker=1
args=()
for a in "$@"; do
  if [[ "$a" == "--no-worker" ]]; then worker=0; else args+=("$a"); fi
done
if [[ ${#args[@]} -eq 0 ]]; then args=(--all); fi

cd "$ROOT"   # entrypoints are relative to the repository root, which becomes the workers' working directory

if ! "$BIN/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/health', timeout=10)" \
     "$PREFECT_API_URL" 2>/dev/null; then
  echo "error: no Prefect server answers at $PREFECT_API_URL; start one with 'make servers'" \
       "(or export PREFECT_API_URL=http://host:4200/api)" >&2
  exit 1
fi

if ! "$BIN/prefect" work-pool inspect "$POOL" >/dev/null 2>&1; then
  "$BIN/prefect" work-pool create "$POOL" --type process
fi
"$BIN/prefect" --no-prompt deploy --prefect-file deployments/prefect.yaml "${args[@]}"

if [[ $worker -eq 1 ]]; then
  if [[ -z "${MLFLOW_TRACKING_URI:-}" ]] && \
     "$BIN/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=5)" 2>/dev/null; then
    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
  fi
  echo "Starting a worker for pool '$POOL' (Ctrl-C stops it). MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-<unset: SQLite under the data home>}"
  # deployments/worker.py: replearn's quiet environment, and one Ctrl-C stops the worker and its flow runs
  exec "$BIN/python" "$ROOT/deployments/worker.py" --pool "$POOL"
fi
