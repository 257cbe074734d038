"""The image a site's container engine runs for a catalogue entry, pinned by digest.

From a registry (the catalogue's or the one an entry was registered at), the engine pulls the
pinned reference itself. From the catalogue's OCI layout (the embedded default) no engine can
pull, so the image is loaded into the local engine once (a
Docker archive made from the layout) and run by its image id, which is content-addressed too.
"""

from __future__ import annotations

import platform
import re
import tempfile
from pathlib import Path
from threading import Lock

from toolferry.catalogue.artifacts import CatalogueArtifacts
from toolferry.catalogue.engine import Engine
from toolferry.catalogue.images import ReservedImage, pinned_location
from toolferry.catalogue.oci.archive import export_docker_archive
from toolferry.catalogue.oci.image import read_image
from toolferry.domain.environment import Environment
from toolferry.domain.errors import InvalidTask

__all__ = ["ENGINE_REPOSITORY", "EngineImages", "host_platform", "reserved_images"]

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}
# Where loaded catalogue images are tagged in the engine (the tag is the manifest digest's hex);
# ordinary executor images may not name it, nor image ids (see reserved_images).
ENGINE_REPOSITORY = "toolferry-catalogue/image"
_IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{6,64}")


def reserved_images(artifacts: CatalogueArtifacts) -> ReservedImage:
    """Why an ordinary executor image may not be used: it would reach catalogue content
    around the catalogue's permission, status and review checks."""
    own = ENGINE_REPOSITORY.split("/")[0] + "/"
    registry = f"{artifacts.pull_host}/{artifacts.namespace}/" if artifacts.pull_host else None

    def why(image: str) -> str | None:
        via = "; run catalogue entries as catalogue:NAME:VERSION"
        if image.startswith(own):
            return f"{own}... images are the catalogue's own{via}"
        if _IMAGE_ID.fullmatch(image):
            return f"images are named, not given by image id{via} or catalogue:sha256:..."
        if registry and image.startswith(registry):
            return f"{registry} holds the catalogue's content{via}"
        return None

    return why


def host_platform() -> str:
    machine = platform.machine().lower()
    return f"linux/{_ARCH.get(machine, machine)}"


class EngineImages:
    def __init__(self, artifacts: CatalogueArtifacts, engine: Engine, work_dir: Path) -> None:
        self._artifacts = artifacts
        self._engine = engine
        self._work_dir = work_dir
        self._lock = Lock()
        self._loading: dict[str, Lock] = {}

    def __call__(self, env: Environment) -> str:
        location = env.classification.location or ""
        own = self._artifacts.location(env.name, env.digest)
        inside = self._artifacts.pull_host or self._artifacts.store.where
        if location.startswith(f"{inside}/{self._artifacts.namespace}/") and location != own:
            raise InvalidTask("image", f"{env.ref} names content of another entry ({location})")
        if not location.startswith(self._artifacts.store.where + "/"):
            return pinned_location(env)  # in a registry: the engine pulls it
        store, repository = self._artifacts.store, self._artifacts.repository(env.name)
        info = read_image(store, repository, env.digest, host_platform())
        image_id = info.config_descriptor.digest
        with self._lock:
            loading = self._loading.setdefault(image_id, Lock())
        with loading:  # one load per image, however many tasks arrive at once
            if not self._engine.has(image_id):
                self._work_dir.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(prefix="load-", dir=self._work_dir) as work:
                    archive = Path(work) / "image.tar"
                    export_docker_archive(
                        store,
                        repository,
                        env.digest,
                        archive,
                        repo_tags=[f"{ENGINE_REPOSITORY}:{env.digest.partition(':')[2]}"],
                        platform=host_platform(),
                    )
                    self._engine.load(archive)
        return image_id
