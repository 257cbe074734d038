# Shared helpers for scripts/*.sh; source it, do not run it.
# shellcheck shell=bash

TOOLFERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TOOLFERRY_ROOT

# Messages go to stderr so that a script's stdout stays usable.
log() { printf '[%s] %s\n' "${TOOLFERRY_SCRIPT:-toolferry}" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# need_root WHAT: die unless root, naming the step that needs it.
need_root() {
	is_root || die "$1 needs root: run this script as root (e.g. sudo bash $0)"
}

# missing_debs PKG...: prints the packages dpkg does not report as installed.
missing_debs() {
	local pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			printf '%s\n' "$pkg"
	done
}

# sha256 of the given strings and files' contents, one line.
fingerprint() {
	local item
	for item in "$@"; do
		if [ -f "$item" ]; then
			sha256sum "$item"
		else
			printf '%s\n' "$item"
		fi
	done | sha256sum | cut -d' ' -f1
}

# Serialise concurrent runs (apt, dockerd and the venvs are shared by every checkout user).
take_setup_lock() {
	local lock="${TMPDIR:-/tmp}/toolferry-setup.lock"
	# shellcheck disable=SC2094
	{ [ -e "$lock" ] || { : >"$lock" && chmod 666 "$lock"; }; } 2>/dev/null || true
	exec 9>>"$lock" || die "cannot open lock file $lock"
	if ! flock -n 9; then
		log "another setup is running; waiting for it (lock $lock)"
		flock 9
	fi
}
