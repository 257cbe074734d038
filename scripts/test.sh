#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs every check CI runs: ruff check, ruff format
# --check, mypy and pytest. Extra arguments go to pytest (e.g. scripts/test.sh -x -k docker).
# All checks run even when one fails; the exit status is non-zero if any failed, including when
# pytest collects no tests. Logs and pytest's junit xml land in test-artifacts/.
set -euo pipefail

TOOLFERRY_SCRIPT=test
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TOOLFERRY_ROOT"

bash scripts/setup.sh

ARTIFACTS="$TOOLFERRY_ROOT/test-artifacts"
mkdir -p "$ARTIFACTS"
export TOOLFERRY_TEST_ARTIFACTS="$ARTIFACTS"
BIN="$TOOLFERRY_ROOT/.venv/bin"
failed=()

# run_step NAME CMD...: runs CMD, its output shown and kept in test-artifacts/NAME.log.
# Sets step_rc; a failure is recorded, not fatal.
run_step() {
	local name="$1"
	shift
	log "== $name: $*"
	set +e
	"$@" </dev/null 2>&1 | tee "$ARTIFACTS/$name.log"
	step_rc=${PIPESTATUS[0]}
	set -e
}

record() { # record NAME: notes a failure of the last step
	[ "$step_rc" -eq 0 ] || failed+=("$1 (exit $step_rc)")
}

# A clean clone has no empty folders (git keeps none), so lint only the ones that exist.
lint_paths=()
for dir in src tests benchmarks; do
	[ -d "$dir" ] && lint_paths+=("$dir")
done

run_step ruff-check "$BIN/ruff" check "${lint_paths[@]}"
record "ruff check"
run_step ruff-format "$BIN/ruff" format --check "${lint_paths[@]}"
record "ruff format --check"
run_step mypy "$BIN/mypy"
record mypy
run_step pytest "$BIN/pytest" --junitxml="$ARTIFACTS/junit.xml" "$@"
case "$step_rc" in
0) ;;
5) failed+=("pytest collected no tests (exit 5): a test run that tests nothing is a failure") ;;
*) failed+=("pytest (exit $step_rc)") ;;
esac

if [ "${#failed[@]}" -gt 0 ]; then
	log "FAILED:"
	printf '  - %s\n' "${failed[@]}" >&2
	log "logs and junit.xml: $ARTIFACTS"
	exit 1
fi
log "all checks passed (logs and junit.xml: $ARTIFACTS)"
