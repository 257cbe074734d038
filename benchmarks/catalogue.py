"""Catalogue import and export of a container image: toolferry vs `skopeo` and `docker save`.

Set-up, not timed: an image built from the local `toolferry-test/busybox:1` with one extra
layer of random data (`--size-mib`), pushed with `docker push` to Debian's `docker-registry`
on a free loopback port. Each round, from the same memory state (`sync`, the page cache dropped
where allowed, every source file read back in), in alternating order:
  * import: `skopeo copy docker://... oci:DIR:1`, the raw tool; the catalogue's copy
    (`RegistryStore` -> `read_image` -> `CatalogueArtifacts.put_image` into a `LayoutStore`);
    and the whole `Importer.from_reference` (the same copy plus the entry published in SQLite);
  * Docker archive: `docker save -o FILE IMAGE` vs `export_docker_archive` from the layout;
  * OCI archive: `skopeo copy oci:DIR:1 oci-archive:FILE:1` vs `export_oci_archive`.
Every target is fresh. Prints medians; ratio = raw tool time / toolferry time (bar: >= 0.9).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from toolferry.catalogue.artifacts import CatalogueArtifacts
from toolferry.catalogue.engine import Engine
from toolferry.catalogue.importing import Importer
from toolferry.catalogue.oci.archive import export_docker_archive, export_oci_archive
from toolferry.catalogue.oci.image import read_image
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.catalogue.oci.registry import RegistryStore
from toolferry.catalogue.service import CatalogueService
from toolferry.security.identity import LOCAL
from toolferry.store.db import Database
from toolferry.store.environments import SqlEnvironmentStore

BASE = "toolferry-test/busybox:1"
REPOSITORY = "bench/img"  # in the registry
NAME = "img"  # the catalogue entry: stored at bench/img in the layout (namespace "bench")
LOADED = "toolferry-bench/catalogue-export:1"  # what `docker load` names the export


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


@contextlib.contextmanager
def registry(root: Path) -> Iterator[str]:
    """`docker-registry serve` storing below `root`; yields its `127.0.0.1:PORT`."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise SystemExit("needs Debian's docker-registry (apt-get install docker-registry)")
    root.mkdir()
    host = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {host}\n"
    )
    log = (root / "registry.log").open("wb")
    server = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{host}/v2/", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the registry did not start; see {log.name}") from None
                time.sleep(0.05)
        yield host
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def build_image(work: Path, tag: str, size: int) -> None:
    """`tag`: BASE plus one layer of `size` random bytes (classic builder: no build cache)."""
    context = work / "context"
    context.mkdir()
    chunk = 1 << 24
    with (context / "random.bin").open("wb") as fh:
        for start in range(0, size, chunk):
            fh.write(os.urandom(min(chunk, size - start)))
    (context / "Dockerfile").write_text(f"FROM {BASE}\nCOPY random.bin /random.bin\n")
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    done = subprocess.run(
        ["docker", "build", "--network", "none", "-q", "-t", tag, str(context)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    shutil.rmtree(context)
    if done.returncode != 0:
        raise RuntimeError(f"docker build failed:\n{done.stderr[-3000:]}")


def engine_dirs(tag: str) -> list[Path]:
    """The overlay2 folders of the image's layers (what `docker save` reads)."""
    data = json.loads(run("docker", "image", "inspect", "-f", "{{json .GraphDriver.Data}}", tag))
    found = [data.get("UpperDir", ""), *(data.get("LowerDir") or "").split(":")]
    return [Path(p) for p in found if p]


def settle(sources: list[Path]) -> None:
    """The same memory state before every timed run: dirty pages written, the page cache
    dropped (where allowed), every file the run reads read back in (see staging.py)."""
    os.sync()
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    for source in sources:
        for top, _dirs, files in os.walk(source):
            for name in files:
                path = Path(top, name)
                if path.is_file() and not path.is_symlink():
                    with path.open("rb") as fh:
                        while fh.read(1 << 24):
                            pass


def timed(fn: Callable[[], object], sources: list[Path]) -> float:
    settle(sources)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# -- the two sides -------------------------------------------------------------------------


def skopeo_import(host: str, dest: Path) -> None:
    run(
        "skopeo",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        f"docker://{host}/{REPOSITORY}:1",
        f"oci:{dest}:1",
    )


def toolferry_copy(host: str, dest: Path) -> str:
    """The copy an import makes: open the registry, read the image (manifest and config),
    copy every blob and manifest into the catalogue's layout. Returns the stored digest."""
    with RegistryStore.for_host(host) as source:
        info = read_image(source, REPOSITORY, "1")
        artifacts = CatalogueArtifacts(LayoutStore(dest), namespace="bench", pull_host=None)
        top = info.index or info.descriptor
        return artifacts.put_image(source, REPOSITORY, top.digest, NAME).digest


@contextlib.contextmanager
def _open_registry(host: str) -> Iterator[RegistryStore]:
    with RegistryStore.for_host(host) as store:  # as the hub opens a caller's registry
        yield store


def make_importer(root: Path, db: Database) -> Importer:
    """An importer wired as the hub wires it: SQLite catalogue, layout store."""
    artifacts = CatalogueArtifacts(LayoutStore(root / "oci"), namespace="bench", pull_host=None)
    return Importer(
        CatalogueService(SqlEnvironmentStore(db)),
        artifacts,
        engine=Engine(),
        open_registry=_open_registry,
        work_dir=root / "tmp",
    )


def full_import(importer: Importer, host: str) -> None:
    importer.from_reference(f"{host}/{REPOSITORY}:1", {"name": NAME}, LOCAL)


def docker_save(tag: str, dest: Path) -> None:
    run("docker", "save", "-o", str(dest), tag)


def toolferry_docker_archive(layout: Path, digest: str, dest: Path) -> None:
    export_docker_archive(LayoutStore(layout), f"bench/{NAME}", digest, dest, repo_tags=[LOADED])


def skopeo_oci_archive(layout: Path, dest: Path) -> None:
    run("skopeo", "copy", "--quiet", f"oci:{layout}:1", f"oci-archive:{dest}:1")


def toolferry_oci_archive(layout: Path, digest: str, dest: Path) -> None:
    export_oci_archive(LayoutStore(layout), f"bench/{NAME}", digest, dest, tag="1")


# -- the benchmark -------------------------------------------------------------------------


def check_docker_archive(archive: Path, image_id: str) -> None:
    """`docker load` reads the export and gets the very image that was pushed."""
    try:
        run("docker", "load", "-q", "-i", str(archive))
        loaded = run("docker", "image", "inspect", "-f", "{{.Id}}", LOADED).strip()
        if loaded != image_id:
            raise RuntimeError(f"docker load made {loaded}, not {image_id}")
    finally:
        subprocess.run(["docker", "rmi", LOADED], capture_output=True, check=False)


class Bench:
    """The timed runs of one image, each writing below a round's fresh folder."""

    def __init__(self, root: Path, host: str, tag: str) -> None:
        self.host, self.tag = host, tag
        self.stored = root / "registry" / "data"  # what the registry serves
        self.engine = engine_dirs(tag)  # what `docker save` reads
        # The export sources (not timed): the catalogue's layout and skopeo's.
        self.layout, self.skopeo_layout = root / "src-toolferry", root / "src-skopeo"
        self.digest = toolferry_copy(host, self.layout)
        skopeo_import(host, self.skopeo_layout)
        self.importer: Importer | None = None
        self.db: Database | None = None

    def prepare(self, work: Path) -> None:
        """Before a round (not timed: creating the database runs its migrations): a fresh
        catalogue for the whole import."""
        self.close()
        self.db = Database.connect(f"sqlite:///{work / 'hub' / 'toolferry.db'}")
        self.importer = make_importer(work / "hub", self.db)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = self.importer = None

    def runs(self) -> dict[str, tuple[Callable[[Path], object], str, list[Path]]]:
        """name -> (what it does in a round's folder, what it writes there, what it reads)."""
        host, layout = self.host, self.layout

        def whole(_: Path) -> None:
            assert self.importer is not None
            full_import(self.importer, host)

        return {
            "skopeo": (lambda w: skopeo_import(host, w / "skopeo"), "skopeo", [self.stored]),
            "toolferry copy": (lambda w: toolferry_copy(host, w / "copy"), "copy", [self.stored]),
            "toolferry import": (whole, "hub/oci", [self.stored]),
            "docker save": (
                lambda w: docker_save(self.tag, w / "save.tar"),
                "save.tar",
                self.engine,
            ),
            "toolferry docker": (
                lambda w: toolferry_docker_archive(layout, self.digest, w / "docker.tar"),
                "docker.tar",
                [layout],
            ),
            "skopeo oci-archive": (
                lambda w: skopeo_oci_archive(self.skopeo_layout, w / "skopeo.tar"),
                "skopeo.tar",
                [self.skopeo_layout],
            ),
            "toolferry oci-archive": (
                lambda w: toolferry_oci_archive(layout, self.digest, w / "oci.tar"),
                "oci.tar",
                [layout],
            ),
        }


def report(
    title: str, size: int, raw: str, raw_times: list[float], sides: dict[str, list[float]]
) -> None:
    mb = size / 1e6
    raw_s = statistics.median(raw_times)
    print(f"{title} ({mb:.0f} MB):")
    print(f"  {raw:<26} {raw_s:6.2f} s  ({mb / raw_s:4.0f} MB/s)")
    for name, times in sides.items():
        side = statistics.median(times)
        print(f"  {name:<26} {side:6.2f} s  ({mb / side:4.0f} MB/s)  ratio {raw_s / side:.2f}")


GROUPS = (
    ("skopeo", "toolferry copy", "toolferry import"),
    ("docker save", "toolferry docker"),
    ("skopeo oci-archive", "toolferry oci-archive"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256, help="the random layer's size")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-oci-archive", action="store_true", help="skip the OCI archive")
    args = parser.parse_args()
    for tool in ("docker", "skopeo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs {tool}")
    size = args.size_mib << 20
    groups = GROUPS[:2] if args.no_oci_archive else GROUPS
    names = [name for group in groups for name in group]
    times: dict[str, list[float]] = {name: [] for name in names}
    sizes: dict[str, int] = {}
    with (
        tempfile.TemporaryDirectory(prefix="toolferry-bench-", dir="/var/tmp") as tmp,
        registry(Path(tmp, "registry")) as host,
    ):
        root = Path(tmp)
        tag = f"{host}/{REPOSITORY}:1"
        bench: Bench | None = None
        try:
            build_image(root, tag, size)
            run("docker", "push", "-q", tag)
            image_id = run("docker", "image", "inspect", "-f", "{{.Id}}", tag).strip()
            bench = Bench(root, host, tag)
            print(f"image {tag} {bench.digest}")
            runs = bench.runs()
            for i in range(args.rounds):
                work = root / f"round{i}"
                work.mkdir()
                bench.prepare(work)
                for group in groups:
                    order = group if i % 2 == 0 else group[::-1]  # who goes first alternates
                    for name in order:
                        fn, written, sources = runs[name]
                        times[name].append(timed(functools.partial(fn, work), sources))
                        output = work / written
                        if i == 0 and output.is_file():
                            sizes[name] = output.stat().st_size
                            if name == "toolferry docker":
                                check_docker_archive(output, image_id)
                            if name == "toolferry oci-archive":
                                # Docker-typed manifests: skopeo finds them only untagged.
                                run("skopeo", "inspect", f"oci-archive:{output}")
                        remove(output)
                bench.close()
                shutil.rmtree(work)
                print(f"round {i + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in names))
        finally:
            if bench is not None:
                bench.close()
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
    print(f"medians of {args.rounds}: a {args.size_mib} MiB random layer on {BASE}")
    importers = {k: times[k] for k in ("toolferry copy", "toolferry import")}
    report("import from the registry", size, "skopeo copy to oci:", times["skopeo"], importers)
    report(
        "Docker archive",
        sizes.get("docker save", size),
        "docker save",
        times["docker save"],
        {"toolferry docker archive": times["toolferry docker"]},
    )
    if not args.no_oci_archive:
        report(
            "OCI archive",
            sizes.get("toolferry oci-archive", size),
            "skopeo oci-archive",
            times["skopeo oci-archive"],
            {"toolferry oci-archive": times["toolferry oci-archive"]},
        )
    print("archive sizes: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
