#!/usr/bin/env bash
# Sets up everything toolferry's demo and tests need on Debian 12, idempotently:
# Debian packages, a Docker Engine that answers, the busybox test image, the project venv
# (.venv) and the old-client venv (.venv-pytes04), a PostgreSQL on 127.0.0.1:5432 with a
# `test` database, a one-node Slurm cluster (munged, slurmctld, slurmd; partition `debug`) and
# a one-node Docker Swarm. A second run only checks, in a few seconds.
#
# Environment: PYTHON (default python3) builds the venvs.
set -euo pipefail

TOOLFERRY_SCRIPT=setup
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TOOLFERRY_ROOT"
exec </dev/null # never wait for a prompt (CI has no stdin)

PYTHON="${PYTHON:-python3}"
DEBS=(docker.io bubblewrap busybox-static python3-venv docker-registry skopeo qemu-utils podman runc
	slurm-wlm munge chromium)
TEST_IMAGE="toolferry-test/busybox:1"
DOCKERD_LOG="/var/log/toolferry-dockerd.log"
# The PostgreSQL the store's tests use (tests/helpers/services.py check_postgres): trust from
# loopback, user postgres, database test; the tests make and drop a database of their own each.
PG_HOST=127.0.0.1
PG_PORT=5432
PG_TEST_DB=test
PG_TRUST_LINE="host all all $PG_HOST/32 trust"
# The one-node Slurm cluster (tests/helpers/services.py check_slurm): this machine is its
# controller and its only compute node.
SLURM_CONF=/etc/slurm/slurm.conf
SLURM_PARTITION=debug
SLURM_STATE_DIR=/var/lib/slurm
SLURM_LOG_DIR=/var/log/slurm
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

# slurm_conf: the slurm.conf of the one-node test cluster, from this machine's hostname, CPUs,
# memory and /tmp size (stable numbers, so that a second run writes the same file).
slurm_conf() {
	local node cpus mem_mb tmp_mb
	node=$(hostname -s)
	# What slurmd counts (nproc would follow OMP_NUM_THREADS and rewrite the file needlessly).
	cpus=$(getconf _NPROCESSORS_ONLN)
	# RealMemory must not exceed what slurmd finds, or the node is drained: leave 1 GiB.
	mem_mb=$(($(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo) / 1024 - 1024))
	# TmpDisk (sbatch --tmp) likewise: the size, not the free space, of /tmp's filesystem.
	tmp_mb=$(($(stat -f -c '%b * %S' /tmp) / 1048576))
	cat <<EOF
# Written by toolferry's scripts/setup.sh: a one-node cluster for tests and the demo.
# setup.sh rewrites this file (and restarts slurmctld and slurmd) when it differs.
ClusterName=toolferry
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$SLURM_STATE_DIR/slurmctld
SlurmdSpoolDir=$SLURM_STATE_DIR/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$SLURM_LOG_DIR/slurmctld.log
SlurmdLogFile=$SLURM_LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job that asks for no memory gets its CPUs' share, not the whole node (the default), so
# such jobs do not run one at a time.
DefMemPerCPU=$((mem_mb / cpus))
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# A node that was down comes back as soon as slurmd registers with a valid configuration.
ReturnToService=2
# Ended jobs stay visible to squeue and scontrol (there is no accounting) for 5 minutes.
MinJobAge=300
# scancel and time limits: SIGTERM, then SIGKILL after 5 s (default 30 s).
KillWait=5
# Refuse at submission a job asking for more than the partition has (say 99 CPUs): by default
# sbatch accepts it and it stays PENDING (reason PartitionConfig) for ever.
EnforcePartLimits=ALL
# Start a submitted job at once rather than at the next batch scheduling pass (up to 3 s later).
SchedulerParameters=batch_sched_delay=0
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb TmpDisk=$tmp_mb State=UNKNOWN
PartitionName=$SLURM_PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

slurm_node_state() { timeout 10 sinfo -h -n "$(hostname -s)" -o %T 2>/dev/null | head -n 1; }

# start_daemon NAME COMMAND...: starts a daemon that forks (setsid: it must outlive this
# script; 9>&- so it does not hold the setup lock), dying with its log's tail when it fails.
start_daemon() {
	local name="$1" logfile="$2"
	shift 2
	log "starting $name (log: $logfile)"
	if ! setsid "$@" </dev/null >>"$logfile" 2>&1 9>&-; then
		log "$name did not start; last lines of $logfile:"
		tail -n 30 "$logfile" >&2 2>/dev/null || true
		die "$name does not start: see $logfile"
	fi
}

# stop_daemons NAME...: stops these daemons (the pids pidof gives) together, waiting up to 30s
# for them to exit (slurmd and slurmctld take about 2 s each after SIGTERM).
stop_daemons() {
	local pids waited=0
	pids=$(pidof "$@") || return 0
	log "stopping $* ($pids)"
	# shellcheck disable=SC2086
	kill $pids 2>/dev/null || true
	# shellcheck disable=SC2086
	while kill -0 $pids 2>/dev/null; do
		[ "$waited" -lt 300 ] || die "$* ($pids) did not exit within 30s after SIGTERM"
		sleep 0.1
		waited=$((waited + 1))
	done
}

# slurmd_registered NODE SINCE: slurmd on NODE registered with slurmctld at or after SINCE
# (date +%FT%T). Until then sinfo shows the state slurmctld saved, which may be stale.
slurmd_registered() {
	local started
	started=$(timeout 10 scontrol show node "$1" 2>/dev/null | grep -o 'SlurmdStartTime=[^ ]*' | cut -d= -f2)
	[ -n "$started" ] && [[ ! "$started" < "$2" ]]
}

ensure_slurm() {
	local want node state waited=0 resumed="" slurmd_since=""
	want=$(slurm_conf)
	node=$(hostname -s)
	if [ ! -f "$SLURM_CONF" ] || [ "$(cat "$SLURM_CONF")" != "$want" ]; then
		need_root "writing $SLURM_CONF"
		log "writing $SLURM_CONF (one node $node, partition $SLURM_PARTITION)"
		mkdir -p "$(dirname "$SLURM_CONF")"
		printf '%s\n' "$want" >"$SLURM_CONF.toolferry-new"
		mv "$SLURM_CONF.toolferry-new" "$SLURM_CONF"
		# Node definitions are only read at start: restart both daemons on the new file.
		stop_daemons slurmd slurmctld
	fi
	if ! pidof munged >/dev/null; then
		need_root "starting munged"
		if [ ! -s /etc/munge/munge.key ]; then
			log "creating the munge key /etc/munge/munge.key"
			mungekey --create --keyfile=/etc/munge/munge.key
		fi
		mkdir -p /run/munge /var/log/munge /var/lib/munge
		# munged refuses a log file it does not own (start_daemon appends to it as root).
		touch /var/log/munge/munged.log
		chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge \
			/var/log/munge/munged.log
		chmod 0400 /etc/munge/munge.key
		start_daemon munged /var/log/munge/munged.log runuser -u munge -- munged
	fi
	if ! pidof slurmctld >/dev/null || ! pidof slurmd >/dev/null; then
		need_root "starting slurmctld and slurmd"
		mkdir -p "$SLURM_STATE_DIR/slurmctld" "$SLURM_STATE_DIR/slurmd" "$SLURM_LOG_DIR"
		pidof slurmctld >/dev/null || start_daemon slurmctld "$SLURM_LOG_DIR/slurmctld.log" slurmctld
		if ! pidof slurmd >/dev/null; then
			slurmd_since=$(date +%FT%T)
			start_daemon slurmd "$SLURM_LOG_DIR/slurmd.log" slurmd
		fi
	fi
	# A started slurmd registers within a second or so; a down or drained node is resumed once
	# (ReturnToService=2 does that too, once slurmd registers with a valid configuration).
	until state=$(slurm_node_state) && [[ "$state" =~ ^(idle|mixed|allocated|completing)$ ]] &&
		{ [ -z "$slurmd_since" ] || slurmd_registered "$node" "$slurmd_since"; }; do
		if [ "$state" = inval ]; then
			log "last lines of $SLURM_LOG_DIR/slurmd.log:"
			tail -n 15 "$SLURM_LOG_DIR/slurmd.log" >&2 2>/dev/null || true
			die "slurmctld finds node $node's hardware below $SLURM_CONF ($(sinfo -h -n "$node" -o %E 2>/dev/null)); compare with slurmd -C"
		fi
		if [[ "$state" =~ ^(down|drain|drained|draining|fail)$ ]] && [ -z "$resumed" ]; then
			log "node $node is $state ($(sinfo -h -n "$node" -o %E 2>/dev/null)); resuming it"
			scontrol update nodename="$node" state=resume || true
			resumed=1
		fi
		if [ "$waited" -ge 600 ]; then
			log "node $node is ${state:-not known to slurmctld} after 60s: $(sinfo -h -n "$node" -o '%T %E' 2>&1)"
			log "last lines of $SLURM_LOG_DIR/slurmctld.log and slurmd.log:"
			tail -n 15 "$SLURM_LOG_DIR/slurmctld.log" "$SLURM_LOG_DIR/slurmd.log" >&2 2>/dev/null || true
			die "the Slurm node $node is not usable; fix the cause above, then: scontrol update nodename=$node state=resume"
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	ready+=("slurm $(sinfo -V | cut -d' ' -f2) (partition $SLURM_PARTITION, node $node $state)")
}

swarm_state() { timeout 20 docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }

ensure_swarm() {
	local state node_state waited=0
	state=$(swarm_state) || die "docker info failed: is the Docker Engine answering?"
	case "$state" in
	active) ;;
	inactive)
		log "making this engine a one-node Docker Swarm (docker swarm init --advertise-addr 127.0.0.1)"
		docker swarm init --advertise-addr 127.0.0.1 >/dev/null ||
			die "docker swarm init failed; see the error above and $DOCKERD_LOG"
		;;
	pending)
		log "the swarm is pending; waiting for it to become active"
		;;
	*)
		die "this engine's swarm is '$state'; repair it (docker swarm unlock, or docker swarm leave --force then run this script again)"
		;;
	esac
	until { [ "$state" = active ] || state=$(swarm_state) && [ "$state" = active ]; } &&
		node_state=$(timeout 20 docker node inspect self --format '{{.Status.State}} {{.Spec.Availability}} {{.ManagerStatus.Reachability}}' 2>/dev/null) &&
		[ "$node_state" = "ready active reachable" ]; do
		if [ "$waited" -ge 300 ]; then
			die "the swarm node is not ready and active after 30s (swarm $(swarm_state), node: ${node_state:-unknown}); see docker node ls and $DOCKERD_LOG"
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	ready+=("swarm (one manager node, $node_state)")
}

take_setup_lock
ensure_debs
ensure_docker
ensure_venvs
ensure_test_image
ensure_podman_image
ensure_postgres
ensure_slurm
ensure_swarm
ready+=("bwrap $(bwrap --version | cut -d' ' -f2)")

elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
summary=$(printf '%s, ' "${ready[@]}")
printf 'setup: ready in %d.%03ds: %s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "${summary%, }"
