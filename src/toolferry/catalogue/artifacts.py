"""Where the catalogue keeps published content: one image store (an OCI registry, or on the
embedded default an OCI image layout), one repository per environment name, every version
pinned by its manifest digest and tagged with its version number.

Container images are stored as images; every other kind as a single-file OCI artifact
(:mod:`toolferry.catalogue.oci.artifact`) whose layer media type says what the file is.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections import OrderedDict
from pathlib import Path
from threading import Lock
from urllib.parse import urlsplit

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.artifact import ArtifactInfo, pull_artifact, push_artifact
from toolferry.catalogue.oci.copy import copy_image
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.catalogue.oci.registry import RegistryStore
from toolferry.catalogue.oci.store import Descriptor, ImageStore
from toolferry.domain.environment import ContentType, Environment, Kind
from toolferry.domain.errors import InvalidTask

__all__ = [
    "FILE_TYPES",
    "RECIPE_NAMES",
    "CatalogueArtifacts",
    "dockerfile_context",
    "open_artifacts",
    "read_recipe",
]

# Content type of a single-file artifact → (artifactType, layer media type).
FILE_TYPES: dict[ContentType, tuple[str, str]] = {
    ContentType.QCOW2: (media.ARTIFACT_VM_DISK, media.DISK_QCOW2),
    ContentType.RAW: (media.ARTIFACT_VM_DISK, media.DISK_RAW),
    ContentType.VMDK: (media.ARTIFACT_VM_DISK, media.DISK_VMDK),
    ContentType.OVA: (media.ARTIFACT_OVA, media.DISK_OVA),
    ContentType.SIF: (media.ARTIFACT_SIF, media.SIF_LAYER),
    ContentType.DOCKERFILE: (media.ARTIFACT_RECIPE, media.RECIPE_TAR),
    ContentType.CONTAINERFILE: (media.ARTIFACT_RECIPE, media.RECIPE_TAR),
    ContentType.PACKERFILE: (media.ARTIFACT_RECIPE, media.RECIPE_TAR),
}
_RESERVED_COMPONENTS = frozenset({"index.json", "oci-layout", "blobs"})
RECIPE_NAMES = ("Dockerfile", "Containerfile", "packer.pkr.hcl", "packer.json")
_MAX_RECIPE = 1 << 20
_RECIPE_CACHE = 256


def read_recipe(context: Path) -> tuple[str, str] | None:
    """``(file name, text)`` of the recipe at the top of a build-context tar, if any."""
    try:
        with tarfile.open(context, "r:*") as tar:
            for name in RECIPE_NAMES:
                for candidate in (name, f"./{name}"):
                    try:
                        member = tar.getmember(candidate)
                    except KeyError:
                        continue
                    if not member.isfile() or member.size > _MAX_RECIPE:
                        continue
                    handle = tar.extractfile(member)
                    if handle is not None:
                        return name, handle.read().decode("utf-8", errors="replace")
    except (OSError, tarfile.TarError):
        return None
    return None


class CatalogueArtifacts:
    """The catalogue's image store, with the naming and pinning rules of the catalogue."""

    def __init__(self, store: ImageStore, *, namespace: str, pull_host: str | None) -> None:
        """``pull_host``: how container engines reach the registry (``host:port``), or
        ``None`` for a layout, which engines cannot pull from (images are loaded instead)."""
        self.store = store
        self.namespace = namespace
        self.pull_host = pull_host
        self._recipes: OrderedDict[str, str | None] = OrderedDict()
        self._lock = Lock()

    def close(self) -> None:
        """Release the store's connections (a registry's HTTP client)."""
        self.store.close()

    def repository(self, name: str) -> str:
        """Where ``name``'s versions live; names whose components are a layout's own file
        names (``index.json``, ``oci-layout``, ``blobs``) cannot be stored."""
        clash = _RESERVED_COMPONENTS.intersection(name.split("/"))
        if clash:
            raise InvalidTask("name", f"the component {sorted(clash)[0]!r} is reserved")
        return f"{self.namespace}/{name}"

    def location(self, name: str, digest: str) -> str:
        """The pinned reference of a version: what ``classification.location`` records."""
        if self.pull_host is not None:
            return f"{self.pull_host}/{self.repository(name)}@{digest}"
        return f"{self.store.where}/{self.repository(name)}@{digest}"

    def put_image(
        self, source: ImageStore, source_repository: str, reference: str, name: str
    ) -> Descriptor:
        """Copy an image (or index) in, untagged (see :meth:`tag`); its digest is kept."""
        copied = copy_image(source, source_repository, reference, self.store, self.repository(name))
        return copied.descriptor

    def tag(self, name: str, version: int, digest: str) -> None:
        """Tag stored content with its version number once that version is published, so a
        tag never names content whose publication failed."""
        repository = self.repository(name)
        top = self.store.resolve(repository, digest)
        data = self.store.manifest(repository, digest)
        self.store.put_manifest(repository, data, top.media_type, tag=str(version))

    def put_file(
        self, path: Path, *, name: str, content_type: ContentType, title: str
    ) -> Descriptor:
        """Store a file as a single-file artifact, untagged (see :meth:`tag`)."""
        artifact_type, layer_type = FILE_TYPES[content_type]
        return push_artifact(
            self.store,
            self.repository(name),
            path,
            artifact_type=artifact_type,
            media_type=layer_type,
            title=title,
            config_media_type=(
                media.SIF_CONFIG if content_type is ContentType.SIF else media.EMPTY_MEDIA_TYPE
            ),
        )

    def get_file(self, env: Environment, dest: Path) -> ArtifactInfo:
        """The version's file, verified, at ``dest``."""
        if env.kind is Kind.OCI_IMAGE:
            raise InvalidTask("format", f"{env.ref} is a container image, not a single file")
        return pull_artifact(self.store, self.repository(env.name), env.digest, dest)

    def recipe(self, env: Environment) -> str | None:
        """The recipe text of a recipe version (cached: versions never change), else None."""
        if env.kind is not Kind.RECIPE:
            return None
        with self._lock:
            if env.digest in self._recipes:
                self._recipes.move_to_end(env.digest)
                return self._recipes[env.digest]
        with tempfile.TemporaryDirectory(prefix="toolferry-recipe-") as work:
            context = Path(work) / "context.tar"
            self.get_file(env, context)
            found = read_recipe(context)
        text = found[1] if found else None
        with self._lock:
            self._recipes[env.digest] = text
            while len(self._recipes) > _RECIPE_CACHE:
                self._recipes.popitem(last=False)
        return text


def open_artifacts(
    *,
    registry: str | None,
    layout_root: Path,
    namespace: str,
    username: str | None = None,
    password: str | None = None,
) -> CatalogueArtifacts:
    """The registry at the URL ``registry`` when set, else an OCI layout at ``layout_root``."""
    if registry is None:
        return CatalogueArtifacts(LayoutStore(layout_root), namespace=namespace, pull_host=None)
    parts = urlsplit(registry if "://" in registry else f"https://{registry}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidTask("catalogue_registry", f"{registry!r} is not an http(s) URL")
    store = RegistryStore(f"{parts.scheme}://{parts.netloc}", username=username, password=password)
    return CatalogueArtifacts(store, namespace=namespace, pull_host=parts.netloc)


def dockerfile_context(text: bytes, name: str = "Dockerfile") -> bytes:
    """A build context (tar) holding only a recipe file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(text)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(text))
    return buffer.getvalue()
