#!/usr/bin/env bash
# Sets up everything toolferry's demo and tests need on Debian 12, idempotently:
# Debian packages, a Docker Engine that answers, the busybox test image, the project venv
# (.venv) and the old-client venv (.venv-pytes04). A second run only checks, in a few seconds.
#
# Environment: PYTHON (default python3) builds the venvs.
set -euo pipefail

TOOLFERRY_SCRIPT=setup
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TOOLFERRY_ROOT"
exec </dev/null # never wait for a prompt (CI has no stdin)

PYTHON="${PYTHON:-python3}"
DEBS=(docker.io bubblewrap busybox-static python3-venv docker-registry skopeo qemu-utils)
TEST_IMAGE="toolferry-test/busybox:1"
DOCKERD_LOG="/var/log/toolferry-dockerd.log"
# py-tes 0.4.2 imports six without declaring it.
PYTES04_REQUIREMENTS=("py-tes==0.4.2" "six")

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
started_ns=$(date +%s%N)
ready=()

ensure_debs() {
	local missing
	mapfile -t missing < <(missing_debs "${DEBS[@]}")
	if [ "${#missing[@]}" -eq 0 ]; then
		ready+=("debs")
		return
	fi
	need_root "installing ${missing[*]}"
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	ready+=("debs (installed ${missing[*]})")
}

docker_answers() { timeout 20 docker info >/dev/null 2>&1; }

ensure_docker() {
	if ! docker_answers; then
		if [ -n "${DOCKER_HOST:-}" ]; then
			die "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST"
		fi
		local started=""
		if pidof dockerd >/dev/null; then
			log "dockerd is running but does not answer yet; waiting up to 60s"
		else
			need_root "starting dockerd"
			log "starting dockerd --iptables=false --bridge=none (log: $DOCKERD_LOG)"
			# setsid+nohup: it must outlive this script; 9>&- so it does not hold the setup lock.
			setsid nohup dockerd --iptables=false --bridge=none >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
			started=$!
		fi
		local waited=0 problem=""
		until docker_answers; do
			if [ -n "$started" ] && ! kill -0 "$started" 2>/dev/null; then
				problem="dockerd exited"
			elif [ "$waited" -ge 60 ]; then
				problem="dockerd did not answer within 60s"
			fi
			if [ -n "$problem" ]; then
				log "$problem; last lines of $DOCKERD_LOG:"
				tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
				die "Docker Engine is not available"
			fi
			sleep 1
			waited=$((waited + 1))
		done
	fi
	ready+=("docker $(docker version --format '{{.Server.Version}}' 2>/dev/null)")
}

# ensure_venv DIR FINGERPRINT CHECK_CODE PIP_ARGS...
# Installs PIP_ARGS into the venv DIR unless its stamp matches FINGERPRINT and CHECK_CODE (Python)
# runs; recreates DIR when its interpreter is broken or not the one PYTHON names.
ensure_venv() {
	local dir="$1" want="$2" check="$3"
	shift 3
	local stamp="$dir/.toolferry-setup-stamp"
	local base_version venv_version
	base_version=$("$PYTHON" -c 'import sys; print(sys.version)') ||
		die "$PYTHON does not run; install Python 3.11 (Debian 12: apt-get install python3 python3-venv)"
	venv_version=$("$dir/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null) || venv_version=""
	if [ -n "$venv_version" ] && [ "$venv_version" != "$base_version" ]; then
		log "$dir uses another Python ($venv_version); recreating it"
		rm -rf "$dir"
		venv_version=""
	fi
	if [ -n "$venv_version" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
		"$dir/bin/python" -c "$check" 2>/dev/null; then
		return 0
	fi
	if [ -z "$venv_version" ]; then
		log "creating $dir with $PYTHON"
		rm -rf "$dir"
		"$PYTHON" -m venv "$dir"
		"$dir/bin/python" -m pip install -q --upgrade pip
	fi
	log "installing into $dir: $*"
	rm -f "$stamp"
	"$dir/bin/python" -m pip install -q "$@"
	"$dir/bin/python" -c "$check" || die "$dir: packages installed but the check failed: $check"
	printf '%s\n' "$want" >"$stamp"
}

ensure_venvs() {
	local pyid
	pyid=$("$PYTHON" -c 'import sys; print(sys.executable, sys.version)')
	ensure_venv .venv "$(fingerprint "$pyid" pyproject.toml)" \
		'import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ("toolferry", "pytest", "mypy", "ruff", "tes")))' \
		-e '.[test]'
	ready+=(".venv")
	ensure_venv .venv-pytes04 "$(fingerprint "$pyid" "${PYTES04_REQUIREMENTS[@]}")" \
		'import importlib.metadata as m, tes; assert m.version("py-tes") == "0.4.2"' \
		"${PYTES04_REQUIREMENTS[@]}"
	ready+=(".venv-pytes04 (py-tes 0.4.2)")
}

ensure_test_image() {
	if ! docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
		log "building $TEST_IMAGE from the host's busybox"
		.venv/bin/python tests/helpers/services.py ensure-busybox-image
	fi
	ready+=("image $TEST_IMAGE")
}

take_setup_lock
ensure_debs
ensure_docker
ensure_venvs
ensure_test_image
ready+=("bwrap $(bwrap --version | cut -d' ' -f2)")

elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
summary=$(printf '%s, ' "${ready[@]}")
printf 'setup: ready in %d.%03ds: %s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "${summary%, }"
