#!/usr/bin/env bash
# The README's main job: a standalone node driven by the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! bin/magnetar bench --help >/dev/null 2>&1; then
  echo "make bench: the standalone node and load generator are not built yet (issues #8, #9);" >&2
  echo "meanwhile 'go test -bench . ./journal/...' measures the layers that exist." >&2
  exit 2
fi
exec bin/magnetar bench "$@"
