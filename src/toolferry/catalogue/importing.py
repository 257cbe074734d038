"""Import: environments from OCI references, uploaded files and recipes built by the engine.

Every import reads and checks everything first (the document the version would be, with
what the content says about itself merged under what the caller gave), then copies the
content into the catalogue's store, then publishes. Bad input stores nothing: an unknown
label, a malformed reference, a digest that does not match, a version already published.
"""

from __future__ import annotations

import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from toolferry.catalogue.artifacts import (
    RECIPE_NAMES,
    CatalogueArtifacts,
    dockerfile_context,
    read_recipe,
)
from toolferry.catalogue.disks import inspect_disk, read_ova, read_sif
from toolferry.catalogue.disks.detect import FileFormat, detect_file
from toolferry.catalogue.disks.ova import extract_disk
from toolferry.catalogue.engine import Engine
from toolferry.catalogue.labels import ImageFacts, document_from_image, merge_documents
from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.archive_import import import_docker_archive, import_oci_archive
from toolferry.catalogue.oci.errors import RegistryUnavailable
from toolferry.catalogue.oci.image import ImageInfo, read_image
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.catalogue.oci.reference import parse_reference
from toolferry.catalogue.oci.store import ImageStore, Platform
from toolferry.catalogue.service import CatalogueService
from toolferry.domain.environment import ContentType, Environment, Kind, environment_to_dict
from toolferry.domain.errors import InvalidTask, NotFound, Unavailable
from toolferry.security.identity import Identity

__all__ = ["UPLOAD_FORMATS", "Importer", "classify_upload"]

# What an uploaded file may be declared as (it is checked against its bytes either way).
UPLOAD_FORMATS = (
    "qcow2",
    "raw",
    "vmdk",
    "ova",
    "sif",
    "docker-archive",
    "oci-archive",
    "dockerfile",
    "containerfile",
    "context",
)
_RECIPE_START = (b"FROM", b"ARG", b"# syntax", b"#syntax")
_PLACEHOLDER_DIGEST = "sha256:" + "0" * 64

OpenRegistry = Callable[[str], AbstractContextManager[ImageStore]]


_MAX_MEMBERS = 100_000
_MAX_RECIPE = 1 << 20


def _tar_names(path: Path) -> set[str]:
    """The member names of a tar (headers only; at most :data:`_MAX_MEMBERS`)."""
    names: set[str] = set()
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                names.add(member.name.removeprefix("./"))
                if len(names) > _MAX_MEMBERS:
                    raise InvalidTask("file", f"holds more than {_MAX_MEMBERS} members")
    except (OSError, tarfile.TarError):
        return set()
    return names


def _looks_like_recipe(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(4096)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    for line in head.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.upper().startswith(_RECIPE_START) or stripped.startswith(b"# syntax"):
            return True
        if not stripped.startswith(b"#"):
            return False
    return False


def classify_upload(path: Path, declared: str | None) -> str:
    """What an uploaded file is: one of :data:`UPLOAD_FORMATS`, from its bytes (checked
    against ``declared`` when given)."""
    if declared is not None and declared not in UPLOAD_FORMATS:
        raise InvalidTask("format", f"{declared!r} is not one of {', '.join(UPLOAD_FORMATS)}")
    names = _tar_names(path) if tarfile.is_tarfile(path) else set()
    found: str | None = None
    if "oci-layout" in names:
        found = "oci-archive"
    elif "manifest.json" in names:
        found = "docker-archive"
    elif any(n in RECIPE_NAMES for n in names):
        found = "context"
    elif not names and _looks_like_recipe(path):
        found = declared if declared in ("dockerfile", "containerfile") else "dockerfile"
    if found is not None:
        if declared is not None and declared != found:
            raise InvalidTask("format", f"declared {declared}, but the file is a {found}")
        return found
    if declared in ("docker-archive", "oci-archive", "dockerfile", "containerfile", "context"):
        raise InvalidTask("format", f"declared {declared}, but the file is not one")
    return detect_file(path, declared).format.value


class Importer:
    def __init__(
        self,
        catalogue: CatalogueService,
        artifacts: CatalogueArtifacts,
        *,
        engine: Engine,
        open_registry: OpenRegistry,
        work_dir: Path,
        max_concurrent: int = 4,
    ) -> None:
        self._catalogue = catalogue
        self._artifacts = artifacts
        self._engine = engine
        self._open_registry = open_registry
        self._work_dir = work_dir
        # Imports move whole images and hold a request thread each: a few at once, the API
        # stays responsive for everyone else.
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._names_lock = threading.Lock()
        self._name_locks: dict[str, threading.Lock] = {}

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=5):
            raise Unavailable("too many imports and builds are running; try again shortly")
        try:
            yield
        finally:
            self._slots.release()

    @contextmanager
    def _publishing(self, name: str) -> Iterator[None]:
        """One publication of ``name`` at a time in this hub: a version is checked, stored
        and published without another import taking its number in between."""
        with self._names_lock:
            lock = self._name_locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def _scratch(self) -> tempfile.TemporaryDirectory[str]:
        self._work_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix="import-", dir=self._work_dir)

    def _name_of(self, document: Mapping[str, Any]) -> str:
        if not isinstance(document, Mapping):
            raise InvalidTask("document", "must be a JSON object")
        name = document.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidTask("name", "required: the environment's name (e.g. lab/align)")
        self._artifacts.repository(name)  # names the store cannot hold are refused up front
        return name

    # -- container images -------------------------------------------------------------------

    def from_reference(
        self,
        reference: str,
        document: Mapping[str, Any],
        who: Identity,
        *,
        platform: str = "linux/amd64",
    ) -> Environment:
        """Import the image an OCI reference names (``host/repo:tag`` or ``...@sha256:``,
        checked against the registry's content), with every platform of an index."""
        ref = parse_reference(reference)
        Platform.parse(platform)
        name = self._name_of(document)
        if ref.registry == self._artifacts.pull_host and ref.repository.startswith(
            self._artifacts.namespace + "/"
        ):
            raise InvalidTask(
                "reference", "is the catalogue's own content: use the entry (catalogue:NAME)"
            )
        with self._slot(), self._open_registry(ref.registry) as source, self._publishing(name):
            try:
                info = read_image(source, ref.repository, ref.lookup, platform)
            except RegistryUnavailable as exc:
                # The registry the caller named: their reference cannot be used (a 400),
                # unlike the catalogue's own store failing (a 502).
                raise InvalidTask("reference", str(exc)) from None
            return self._publish_image(
                source, ref.repository, info, document, who, fallback=ref.repository
            )

    def _publish_image(
        self,
        source: ImageStore,
        repository: str,
        info: ImageInfo,
        document: Mapping[str, Any],
        who: Identity,
        *,
        fallback: str,
    ) -> Environment:
        top = info.index or info.descriptor
        facts = ImageFacts(
            labels=info.labels,
            os=info.os or None,
            architecture=info.architecture or None,
            variant=info.variant,
            created=info.created,
            size=info.size,
            media_type=top.media_type,
        )
        derived = document_from_image(facts, fallback_title=fallback)
        doc = self._complete(derived, document, kind=Kind.OCI_IMAGE, digest=top.digest)
        env = self._catalogue.prepare(doc, who)
        self._artifacts.put_image(source, repository, top.digest, env.name)
        published = self._catalogue.publish(env)
        self._artifacts.tag(env.name, env.version, top.digest)
        return published

    def _complete(
        self,
        derived: Mapping[str, Any],
        document: Mapping[str, Any],
        *,
        kind: Kind,
        digest: str,
    ) -> dict[str, Any]:
        """The caller's document over what the content says, with kind, digest and location
        set from the content; a digest the caller gave must be the content's."""
        name = self._name_of(document)
        given = document.get("digest")
        if given is not None and given != digest and digest != _PLACEHOLDER_DIGEST:
            raise InvalidTask("digest", f"{given} does not match the content, which is {digest}")
        if document.get("kind") not in (None, str(kind)):
            raise InvalidTask("kind", f"the content is a {kind}, not a {document.get('kind')}")
        for key in ("classification", "content"):
            if not isinstance(document.get(key, {}), Mapping):
                raise InvalidTask(key, "must be a JSON object")
        measured_checksum = derived.get("classification", {}).get("checksum")
        given_checksum = document.get("classification", {}).get("checksum")
        if measured_checksum and given_checksum and given_checksum != measured_checksum:
            raise InvalidTask(
                "classification.checksum",
                f"{given_checksum} does not match the file, which is {measured_checksum}",
            )
        doc = merge_documents(derived, document)
        doc["kind"] = str(kind)
        doc["digest"] = digest
        classification = dict(doc.get("classification") or {})
        classification["location"] = self._artifacts.location(name, digest)
        if measured_checksum:
            classification["checksum"] = measured_checksum
        doc["classification"] = classification
        # What was measured from the content wins over what the caller says about it.
        doc["content"] = {**dict(doc.get("content") or {}), **dict(derived.get("content") or {})}
        return doc

    # -- uploaded files -----------------------------------------------------------------------

    def from_file(
        self,
        path: Path,
        document: Mapping[str, Any],
        who: Identity,
        *,
        declared: str | None = None,
        platform: str = "linux/amd64",
    ) -> Environment:
        """Import an uploaded file: a Docker or OCI archive, a recipe (a Dockerfile or a build
        context tar), a VM disk (qcow2, raw, vmdk, OVA) or an Apptainer SIF."""
        Platform.parse(platform)
        name = self._name_of(document)
        what = classify_upload(path, declared)
        if what not in ("docker-archive", "oci-archive") and document.get("digest") is not None:
            raise InvalidTask(
                "digest",
                "is the stored artifact's, known once stored: leave it out, and give "
                "classification.checksum (sha256:<hex> of the file) to have the file checked",
            )
        with self._slot(), self._publishing(name):
            if what in ("docker-archive", "oci-archive"):
                return self._from_archive(path, what, document, who, platform)
            if what in ("dockerfile", "containerfile", "context"):
                return self._from_recipe(path, what, document, who)
            if what == "sif":
                return self._from_sif(path, document, who)
            return self._from_disk(path, what, document, who)

    def _from_archive(
        self,
        path: Path,
        what: str,
        document: Mapping[str, Any],
        who: Identity,
        platform: str,
    ) -> Environment:
        with self._scratch() as work:
            staging = LayoutStore(Path(work) / "layout")
            try:
                if what == "docker-archive":
                    top = import_docker_archive(path, staging, "upload")
                else:
                    top = import_oci_archive(path, staging, "upload", work_dir=Path(work))
                info = read_image(staging, "upload", top.digest, platform)
            except NotFound as exc:
                raise InvalidTask("file", f"the {what} is incomplete: {exc}") from None
            fallback = str(document.get("name") or "upload")
            return self._publish_image(staging, "upload", info, document, who, fallback=fallback)

    def _publish_file(
        self,
        path: Path,
        derived: Mapping[str, Any],
        document: Mapping[str, Any],
        who: Identity,
        *,
        kind: Kind,
        content_type: ContentType,
    ) -> Environment:
        # Every check first, with a stand-in digest: nothing is stored for a bad document.
        draft = self._catalogue.prepare(
            self._complete(derived, document, kind=kind, digest=_PLACEHOLDER_DIGEST), who
        )
        stored = self._artifacts.put_file(
            path, name=draft.name, content_type=content_type, title=path.name
        )
        doc = self._complete(derived, document, kind=kind, digest=stored.digest)
        published = self._catalogue.publish(self._catalogue.prepare(doc, who))
        self._artifacts.tag(published.name, published.version, stored.digest)
        return published

    def _from_disk(
        self, path: Path, fmt: str, document: Mapping[str, Any], who: Identity
    ) -> Environment:
        classification: dict[str, Any] = {
            "title": str(document.get("name") or path.name),
            "runtime_technology": "vm",
            "image_type": "implicit",
        }
        content: dict[str, Any] = {"size_bytes": path.stat().st_size}
        if fmt == FileFormat.OVA.value:
            package = read_ova(path)
            with self._scratch() as work:
                # The disk inside must be self-contained too (no backing or data file).
                disk = inspect_disk(extract_disk(path, Path(work) / "disk").path)
            content["virtual_size_bytes"] = disk.virtual_size
            hardware = {
                k: v
                for k, v in (
                    ("cpu_cores", package.ovf.hardware.cpu_cores),
                    ("ram_gb", package.ovf.hardware.ram_gb),
                    ("disk_gb", package.ovf.hardware.disk_gb),
                )
                if v
            }
            if hardware:
                classification["virtual_hardware"] = hardware
            if package.ovf.operating_system:
                classification["operating_system"] = [package.ovf.operating_system]
            if package.ovf.name:
                classification["title"] = package.ovf.name
            content_type = ContentType.OVA
            content["media_type"] = media.DISK_OVA
        else:
            info = inspect_disk(path, fmt)
            if info.format.value not in ("qcow2", "raw", "vmdk"):
                raise InvalidTask(
                    "format",
                    f"a {info.format.value} disk cannot be catalogued; convert it to qcow2",
                )
            content_type = ContentType(info.format.value)
            content["virtual_size_bytes"] = info.virtual_size
            classification["checksum"] = info.digest
            content["media_type"] = {
                "qcow2": media.DISK_QCOW2,
                "raw": media.DISK_RAW,
                "vmdk": media.DISK_VMDK,
            }[info.format.value]
        classification["content_type"] = str(content_type)
        derived = {"classification": classification, "content": content}
        return self._publish_file(
            path, derived, document, who, kind=Kind.VM_DISK, content_type=content_type
        )

    def _from_sif(self, path: Path, document: Mapping[str, Any], who: Identity) -> Environment:
        sif = read_sif(path)
        facts = ImageFacts(
            labels=sif.labels,
            os="linux",
            architecture=sif.architecture,
            created=sif.created,
            size=path.stat().st_size,
            media_type=media.SIF_LAYER,
        )
        derived = document_from_image(facts, fallback_title=str(document.get("name") or path.name))
        derived["classification"] |= {
            "content_type": "sif",
            "runtime_implementation": "apptainer",
        }
        return self._publish_file(
            path, derived, document, who, kind=Kind.APPTAINER_SIF, content_type=ContentType.SIF
        )

    def _from_recipe(
        self, path: Path, what: str, document: Mapping[str, Any], who: Identity
    ) -> Environment:
        with self._scratch() as work:
            if what == "context":
                context = path
                found = read_recipe(path)
                if found is None:
                    raise InvalidTask("file", "the build context holds no Dockerfile/Containerfile")
                recipe_name = found[0]
            else:
                if path.stat().st_size > _MAX_RECIPE:
                    raise InvalidTask("file", f"a recipe file is at most {_MAX_RECIPE} bytes")
                recipe_name = "Containerfile" if what == "containerfile" else "Dockerfile"
                context = Path(work) / "context.tar"
                context.write_bytes(dockerfile_context(path.read_bytes(), recipe_name))
            content_type = (
                ContentType.CONTAINERFILE
                if recipe_name == "Containerfile"
                else ContentType.PACKERFILE
                if recipe_name.startswith("packer")
                else ContentType.DOCKERFILE
            )
            derived = {
                "classification": {
                    "title": str(document.get("name") or recipe_name),
                    "content_type": str(content_type),
                    "image_type": "declarative",
                    "runtime_technology": "container",
                },
                "content": {
                    "media_type": media.RECIPE_TAR,
                    "size_bytes": context.stat().st_size,
                },
            }
            return self._publish_file(
                context, derived, document, who, kind=Kind.RECIPE, content_type=content_type
            )

    # -- building recipes ---------------------------------------------------------------------

    def build(
        self, name: str, version: int, document: Mapping[str, Any], who: Identity
    ) -> Environment:
        """Build a recipe version with the local engine (its RUN steps without network) and
        publish the image as the next version of ``document['name']`` (default: the
        recipe's name), based on the recipe."""
        recipe = self._catalogue.get(name, version, who)
        if recipe.kind is not Kind.RECIPE:
            raise InvalidTask("kind", f"{recipe.ref} is a {recipe.kind}, not a recipe")
        if not recipe.runnable:
            raise InvalidTask("status", f"{recipe.ref} is deleted")
        if recipe.classification.content_type is ContentType.PACKERFILE:
            raise InvalidTask("kind", f"{recipe.ref} is a Packer template; only Dockerfiles build")
        if not isinstance(document, Mapping):
            raise InvalidTask("document", "must be a JSON object")
        target = dict(document)
        target.setdefault("name", recipe.name)
        target.setdefault("base", recipe.ref)  # the image's lineage starts at its recipe
        given = target.get("classification") or {}
        if not isinstance(given, Mapping):
            raise InvalidTask("classification", "must be a JSON object")
        inherited = {
            key: getattr(recipe.classification, key)
            for key in ("description", "community", "purpose", "software_packages")
            if getattr(recipe.classification, key)
        }
        # The image's own labels first (title, ...), then what the recipe was published with.
        target["classification"] = {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in inherited.items()},
            **given,
        }
        if recipe.interface is not None and "interface" not in target:
            target["interface"] = environment_to_dict(recipe)["interface"]
        target_name = self._name_of(target)
        with self._slot(), self._publishing(target_name):
            # Every check of the version to publish before the engine spends time on it.
            self._catalogue.prepare(
                self._complete(
                    {
                        "classification": {
                            "title": recipe.classification.title,
                            "content_type": "oci",
                        }
                    },
                    target,
                    kind=Kind.OCI_IMAGE,
                    digest=_PLACEHOLDER_DIGEST,
                ),
                who,
            )
            with self._scratch() as work:
                context = Path(work) / "context.tar"
                self._artifacts.get_file(recipe, context)
                found = read_recipe(context)
                if found is None:
                    raise InvalidTask("recipe", f"{recipe.ref} holds no Dockerfile/Containerfile")
                tag = f"toolferry-build/{uuid.uuid4().hex[:12]}:latest"
                self._engine.build(context, tag=tag, dockerfile=found[0])
                try:
                    archive = Path(work) / "image.tar"
                    self._engine.save(tag, archive)
                finally:
                    self._engine.remove(tag)
                return self._from_archive(archive, "docker-archive", target, who, "linux/amd64")
