#!/usr/bin/env bash
# Sets up everything toolferry's demo and tests need on Debian 12, idempotently:
# Debian packages, a Docker Engine that answers, the busybox test image, the project venv
# (.venv) and the old-client venv (.venv-pytes04), a PostgreSQL on 127.0.0.1:5432 with a
# `test` database. A second run only checks, in a few seconds.
#
# Environment: PYTHON (default python3) builds the venvs.
set -euo pipefail

TOOLFERRY_SCRIPT=setup
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TOOLFERRY_ROOT"
exec </dev/null # never wait for a prompt (CI has no stdin)

PYTHON="${PYTHON:-python3}"
DEBS=(docker.io bubblewrap busybox-static python3-venv docker-registry skopeo qemu-utils podman runc)
TEST_IMAGE="toolferry-test/busybox:1"
DOCKERD_LOG="/var/log/toolferry-dockerd.log"
# The PostgreSQL the store's tests use (tests/helpers/services.py check_postgres): trust from
# loopback, user postgres, database test; the tests make and drop a database of their own each.
PG_HOST=127.0.0.1
PG_PORT=5432
PG_TEST_DB=test
PG_TRUST_LINE="host all all $PG_HOST/32 trust"
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

pg_answers() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 5 2>/dev/null; }

pg_sql() { psql -X -q -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atc "$1"; }

# pg_cluster: "VERSION NAME LOGFILE" of the local cluster on PG_PORT (else the newest one).
pg_cluster() {
	pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '
		{ line = $1 " " $2 " " $7 } $3 == port { found = line } END { print (found ? found : line) }'
}

# pg_allow_trust VERSION NAME: trust from loopback, first in pg_hba.conf (the first match wins).
pg_allow_trust() {
	local hba="/etc/postgresql/$1/$2/pg_hba.conf"
	[ -f "$hba" ] || die "no $hba: is cluster $1/$2 a Debian (postgresql-common) cluster?"
	if ! grep -qE "^host[[:space:]]+all[[:space:]]+all[[:space:]]+$PG_HOST/32[[:space:]]+trust([[:space:]]|$)" "$hba"; then
		log "allowing trust authentication from $PG_HOST in $hba (for tests)"
		sed -i "1i $PG_TRUST_LINE  # added by toolferry scripts/setup.sh for tests" "$hba"
		return 0
	fi
	return 1
}

ensure_postgres() {
	local cluster version name logfile
	if ! pg_answers; then
		need_root "starting PostgreSQL"
		if [ -n "$(missing_debs postgresql)" ]; then
			log "installing PostgreSQL"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -qq
			apt-get install -y -qq --no-install-recommends postgresql >/dev/null
		fi
		read -r version name logfile <<<"$(pg_cluster)"
		if [ -z "${version:-}" ]; then
			# The package makes a cluster unless createcluster.conf says not to.
			version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
			[ -n "$version" ] || die "postgresql is installed but no server version is in /usr/lib/postgresql"
			log "creating PostgreSQL cluster $version/main on port $PG_PORT"
			pg_createcluster --port "$PG_PORT" "$version" main >/dev/null
			read -r version name logfile <<<"$(pg_cluster)"
		fi
		pg_allow_trust "$version" "$name" || true
		log "starting PostgreSQL cluster $version/$name (log: $logfile)"
		# setsid: the server must outlive this script; 9>&- so it does not hold the setup lock.
		setsid pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start 9>&- ||
			log "pg_ctlcluster start failed; waiting in case it is starting anyway"
		local waited=0
		until pg_answers; do
			if [ "$waited" -ge 30 ]; then
				log "PostgreSQL did not answer on $PG_HOST:$PG_PORT within 30s; last lines of $logfile:"
				tail -n 30 "$logfile" >&2 2>/dev/null || true
				die "PostgreSQL is not available"
			fi
			sleep 1
			waited=$((waited + 1))
		done
	fi
	if ! command -v psql >/dev/null; then
		# A server answers but not one of ours (no client here): the tests say what they miss.
		ready+=("postgresql on $PG_HOST:$PG_PORT (not checked: no psql)")
		return
	fi
	if ! pg_sql "SELECT 1" >/dev/null 2>&1; then
		# It answers but asks for a password: trust loopback, then reload (never restart).
		read -r version name logfile <<<"$(pg_cluster)"
		[ -n "${version:-}" ] && is_root ||
			die "PostgreSQL on $PG_HOST:$PG_PORT refuses user postgres without a password; allow trust from $PG_HOST in its pg_hba.conf"
		pg_allow_trust "$version" "$name" || true
		pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload
		local tries=0
		until pg_sql "SELECT 1" >/dev/null 2>&1; do
			[ "$tries" -lt 10 ] || die "PostgreSQL still refuses user postgres from $PG_HOST after reloading pg_hba.conf"
			sleep 0.5
			tries=$((tries + 1))
		done
	fi
	if [ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = '$PG_TEST_DB'")" != 1 ]; then
		log "creating the database $PG_TEST_DB"
		createdb -w -h "$PG_HOST" -p "$PG_PORT" -U postgres "$PG_TEST_DB"
	fi
	ready+=("postgresql $(pg_sql 'SHOW server_version' | cut -d' ' -f1) on $PG_HOST:$PG_PORT")
}

ensure_podman_image() {
	# podman has no daemon; its storage needs the test image too (runc: crun fails on this
	# host's hybrid cgroups, see podman_global_args).
	if ! podman --runtime runc --cgroup-manager=cgroupfs image exists "localhost/$TEST_IMAGE" 2>/dev/null; then
		log "importing $TEST_IMAGE into podman from the host's busybox"
		.venv/bin/python tests/helpers/services.py ensure-busybox-image-podman
	fi
	ready+=("podman $(podman --version | cut -d' ' -f3)")
}

take_setup_lock
ensure_debs
ensure_docker
ensure_venvs
ensure_test_image
ensure_podman_image
ensure_postgres
ready+=("bwrap $(bwrap --version | cut -d' ' -f2)")

elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
summary=$(printf '%s, ' "${ready[@]}")
printf 'setup: ready in %d.%03ds: %s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "${summary%, }"
