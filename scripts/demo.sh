#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs `toolferry demo`: an embedded hub that runs
# real tasks. Extra arguments go to `toolferry demo`.
set -euo pipefail

TOOLFERRY_SCRIPT=demo
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TOOLFERRY_ROOT"

bash scripts/setup.sh
exec "$TOOLFERRY_ROOT/.venv/bin/toolferry" demo "$@"
