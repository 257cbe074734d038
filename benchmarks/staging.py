"""Input staging of a 1 GiB file over loopback HTTP: toolferry vs `curl`, then from the cache.

The server is BusyBox's httpd (Debian `busybox-static`), a small C server neither side owns.
Each round, from a clean page cache state (`sync` first, not timed):
  * `curl -o FILE URL`, the raw tool;
  * a first stage through the site's input cache (HEAD for validators, GET streamed to disk
    with sha256 computed on the way, published into the cache, hard-linked to the task);
  * the same input again: a cache hit (HEAD, then a hard link).
Prints medians; throughput ratio = curl time / toolferry time (target ≥ 0.9); cache speed-up =
first stage / cache hit (target ≥ 100).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from toolferry.storage.cache import InputCache
from toolferry.storage.http import HttpStorage
from toolferry.storage.router import StorageRouter


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_input(path: Path, size: int) -> None:
    chunk = 1 << 24
    with path.open("wb") as fh:
        for _ in range(size // chunk):
            fh.write(os.urandom(chunk))


def settle(source: Path) -> None:
    """The same memory state before every timed run: dirty pages written, the page cache
    dropped (where allowed), the served file read back in. Without this the second 1 GiB
    written in a row is measured on a different machine than the first (fresh guest pages
    cost more than recycled ones), whoever runs second."""
    os.sync()
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    with source.open("rb") as fh:
        while fh.read(1 << 24):
            pass


def timed(fn: object, source: Path) -> float:
    settle(source)
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    busybox = shutil.which("busybox")
    curl = shutil.which("curl")
    if not busybox or not curl:
        raise SystemExit("needs busybox and curl: bash scripts/setup.sh installs them")
    with tempfile.TemporaryDirectory(prefix="toolferry-bench-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        served = root / "served"
        served.mkdir()
        source = served / "big.bin"
        make_input(source, args.size_mib << 20)
        port = free_port()
        server = subprocess.Popen(
            [busybox, "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", str(served)]
        )
        url = f"http://127.0.0.1:{port}/big.bin"
        try:
            time.sleep(0.5)
            router = StorageRouter([HttpStorage()])
            curl_times, first_times, hit_times = [], [], []
            for i in range(args.rounds):
                dest = root / "curl.out"
                curl_times.append(
                    timed(
                        functools.partial(
                            subprocess.run, [curl, "-sSf", "-o", str(dest), url], check=True
                        ),
                        source,
                    )
                )
                dest.unlink()
                cache = InputCache(root / f"cache{i}", max_bytes=4 << 30)
                task = root / f"task{i}"
                task.mkdir()
                first_times.append(
                    timed(
                        functools.partial(
                            cache.stage, url, task / "a", directory=False, router=router
                        ),
                        source,
                    )
                )
                staged = cache.stage(url, task / "b", directory=False, router=router)
                assert staged.hit
                hit_times.append(
                    timed(
                        functools.partial(
                            cache.stage, url, task / "c", directory=False, router=router
                        ),
                        source,
                    )
                )
                shutil.rmtree(task)
                shutil.rmtree(root / f"cache{i}")
                print(
                    f"round {i + 1}: curl {curl_times[-1]:.2f}s, toolferry {first_times[-1]:.2f}s, "
                    f"cache hit {hit_times[-1] * 1000:.1f}ms"
                )
        finally:
            server.terminate()
            server.wait()
    size_mb = (args.size_mib << 20) / 1e6
    curl_s, first_s, hit_s = (statistics.median(t) for t in (curl_times, first_times, hit_times))
    print(f"medians of {args.rounds}: {args.size_mib} MiB")
    print(f"  curl       {curl_s:.2f} s  ({size_mb / curl_s:.0f} MB/s)")
    print(f"  toolferry  {first_s:.2f} s  ({size_mb / first_s:.0f} MB/s), sha256 included")
    print(f"  cache hit  {hit_s * 1000:.1f} ms")
    print(f"throughput ratio (curl time / toolferry time): {curl_s / first_s:.2f}  (target >= 0.9)")
    print(f"cache speed-up (first / hit): {first_s / hit_s:.0f}x  (target >= 100)")


if __name__ == "__main__":
    main()
