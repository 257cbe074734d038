"""Which host paths the none runtime shares: the scan of a fake host root and the allow-lists."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from toolferry.runtimes.none import ETC_ENTRIES, SYS_ENTRIES, HostRoot, scan_host_root

# Never shared: password hashes, privilege rules, host keys and the places sites keep secrets.
SECRETS = (
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "sudoers",
    "sudoers.d/local",
    "ssh/ssh_host_ed25519_key",
    "ssl/private/host.key",
    "pki/tls/private/host.key",
    "machine-id",
    "environment",
    "profile.d/proxy.sh",
    "ld.so.preload",
    "pip.conf",
    "npmrc",
    "security/opasswd",
    "krb5.keytab",
    "docker/key.json",
)


def _touch(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A merged-/usr host with an /etc full of things that must not all be shared."""
    _touch(tmp_path / "usr" / "bin" / "sh")
    _touch(tmp_path / "usr" / "share" / "zoneinfo" / "Etc" / "UTC")
    _touch(tmp_path / "usr" / "lib" / "os-release")
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "lib").symlink_to("usr/lib")
    etc = tmp_path / "etc"
    for secret in SECRETS:
        _touch(etc / secret, "secret")
    for name in ("passwd", "group", "ld.so.cache", "ssl/certs/ca.pem", "ssl/openssl.cnf"):
        _touch(etc / name)
    _touch(etc / "java-17-openjdk" / "jvm-amd64.cfg")
    _touch(etc / "java-21-openjdk" / "jvm-amd64.cfg")
    _touch(etc / "ssh" / "ssh_config")
    (etc / "localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")
    (etc / "os-release").symlink_to("../usr/lib/os-release")
    (etc / "mtab").symlink_to("/proc/mounts")
    _touch(tmp_path / "run" / "resolv.conf")
    (etc / "resolv.conf").symlink_to("../run/resolv.conf")  # outside the sandbox: bound
    (etc / "hosts").symlink_to("/nonexistent/toolferry/hosts")  # dangling: skipped
    _touch(tmp_path / "opt" / "tool" / "bin" / "tool")
    _touch(tmp_path / "sys" / "devices" / "system" / "cpu" / "online", "0-3")
    _touch(tmp_path / "sys" / "class" / "dmi" / "id" / "product_serial", "serial")
    return tmp_path


def test_scan_shares_system_dirs_and_only_the_allowed_etc_and_sys_entries(host: Path) -> None:
    root = scan_host_root(str(host))
    assert root == HostRoot(
        dirs=("/usr",),
        symlinks=(
            ("/bin", "usr/bin"),
            ("/lib", "usr/lib"),
            ("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC"),
            ("/etc/os-release", "../usr/lib/os-release"),
            ("/etc/mtab", "/proc/mounts"),
        ),
        extras=(
            "/etc/passwd",
            "/etc/group",
            "/etc/resolv.conf",
            "/etc/ld.so.cache",
            "/etc/ssl/certs",
            "/etc/ssl/openssl.cnf",
            "/etc/java-17-openjdk",
            "/etc/java-21-openjdk",
            "/sys/devices/system/cpu",
        ),
    )


def test_scan_resolves_merged_usr_symlinks(host: Path) -> None:
    root = scan_host_root(str(host))
    assert root.resolve("/bin/sh") == "/usr/bin/sh"
    assert root.resolve("/etc/localtime") == "/usr/share/zoneinfo/Etc/UTC"
    assert root.shared_path_of("/usr/bin/sh") == "/usr"
    assert root.shared_path_of("/etc/ssl/certs/ca.pem") == "/etc/ssl/certs"
    assert root.shared_path_of("/etc/ssl/private") is None
    assert root.shared_path_of("/opt/tool") is None


@pytest.mark.parametrize("secret", SECRETS)
def test_no_allow_list_entry_reaches_a_secret(secret: str) -> None:
    for entry in ETC_ENTRIES:
        assert not fnmatch.fnmatchcase(secret, entry), (secret, entry)
        assert not secret.startswith(entry.rstrip("/") + "/"), (secret, entry)


def test_etc_and_sys_entries_are_relative_and_absolute_respectively() -> None:
    assert all(not entry.startswith("/") and ".." not in entry for entry in ETC_ENTRIES)
    assert all(entry.startswith("/sys/devices/system/") for entry in SYS_ENTRIES)


def test_this_hosts_scan_shares_no_secret() -> None:
    root = scan_host_root()
    assert "/opt" not in root.dirs
    assert "/etc" not in root.dirs
    shared = [*root.dirs, *root.extras, *(link for link, _ in root.symlinks)]
    for secret in SECRETS:
        path = "/etc/" + secret
        assert root.shared_path_of(path) is None, path
        assert path not in shared
    for extra in root.extras:  # every shared entry is readable by anyone on the host
        mode = os.stat(extra).st_mode
        assert mode & 0o004, extra
