#!/usr/bin/env bash
# make bench: the default scenario (bin/magnetar bench list names the others)
# against an in-process standalone node, or against the cluster named by
# MAGNETAR_BENCH_URL / --url. Prints a summary and the path of the report.
# Extra arguments go to 'magnetar bench': make bench BENCH_ARGS="--runs 5".
set -euo pipefail
cd "$(dirname "$0")/.."
if ! bin/magnetar bench --help >/dev/null 2>&1; then
  echo "make bench: bin/magnetar has no working 'bench' command; run 'make build'" >&2
  exit 2
fi
exec bin/magnetar bench "$@"
