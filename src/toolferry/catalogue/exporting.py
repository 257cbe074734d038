"""Export: a version's content as a file others' tools read, and its metadata as JSON.

* container images: an OCI archive (``skopeo``, ``podman load``) or a Docker archive
  (``docker load``), every platform of an index in the OCI archive;
* VM disks: the stored file, or converted between qcow2, raw and vmdk with ``qemu-img``
  (an OVA's first disk likewise);
* SIF files and recipes: the stored file (a recipe as its build context, or the recipe text);
* any kind: ``json``, the entry as the API shows it.

Each export but ``json`` counts in the entry's ``total_exports``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toolferry.catalogue.artifacts import CatalogueArtifacts, read_recipe
from toolferry.catalogue.disks import convert_disk, convert_ova
from toolferry.catalogue.oci.archive import export_docker_archive, export_oci_archive
from toolferry.catalogue.service import CatalogueService
from toolferry.domain.environment import ContentType, Environment, Kind, environment_to_dict
from toolferry.domain.errors import InvalidTask, InvalidTransition
from toolferry.security.identity import Identity

__all__ = ["EXPORT_MEDIA_TYPES", "FORMATS", "Exported", "export"]

FORMATS: dict[Kind, tuple[str, ...]] = {
    Kind.OCI_IMAGE: ("oci-archive", "docker-archive", "json"),
    Kind.VM_DISK: ("original", "qcow2", "raw", "vmdk", "json"),
    Kind.APPTAINER_SIF: ("sif", "json"),
    Kind.RECIPE: ("context", "recipe", "json"),
}
_JSON, _TAR, _BINARY = "application/json", "application/x-tar", "application/octet-stream"
_TEXT, _SIF = "text/plain; charset=utf-8", "application/vnd.sylabs.sif"
EXPORT_MEDIA_TYPES = (_JSON, _TAR, _BINARY, "text/plain", _SIF)
_DISK_SUFFIX = {"qcow2": ".qcow2", "raw": ".img", "vmdk": ".vmdk"}


@dataclass(frozen=True)
class Exported:
    path: Path
    filename: str  # what a download should be called
    media_type: str


def _stem(env: Environment) -> str:
    return f"{env.name.replace('/', '_')}-{env.version}"


def export(
    catalogue: CatalogueService,
    artifacts: CatalogueArtifacts,
    name: str,
    version: int,
    fmt: str,
    who: Identity,
    work: Path,
) -> Exported:
    """Write version ``name:version`` in format ``fmt`` under the directory ``work``."""
    env = catalogue.get(name, version, who)
    allowed = FORMATS[env.kind]
    if fmt not in allowed:
        raise InvalidTask("format", f"a {env.kind} exports as {', '.join(allowed)}, not {fmt!r}")
    stem = _stem(env)
    if fmt == "json":
        path = work / f"{stem}.json"
        path.write_text(json.dumps(environment_to_dict(env), indent=2) + "\n")
        return Exported(path, path.name, _JSON)
    if not env.runnable:
        raise InvalidTransition(f"{env.ref} is deleted: only its metadata (json) is kept")
    exported = _content(artifacts, env, fmt, work, stem)
    catalogue.count_export(env)
    return exported


def _content(
    artifacts: CatalogueArtifacts, env: Environment, fmt: str, work: Path, stem: str
) -> Exported:
    repository = artifacts.repository(env.name)
    if fmt == "oci-archive":
        path = work / f"{stem}.oci.tar"
        export_oci_archive(artifacts.store, repository, env.digest, path, tag=str(env.version))
        return Exported(path, path.name, _TAR)
    if fmt == "docker-archive":
        path = work / f"{stem}.docker.tar"
        export_docker_archive(
            artifacts.store, repository, env.digest, path, repo_tags=[f"{env.name}:{env.version}"]
        )
        return Exported(path, path.name, _TAR)
    stored = work / "stored"
    artifacts.get_file(env, stored)
    content_type = env.classification.content_type
    if env.kind is Kind.RECIPE:
        if fmt == "recipe":
            found = read_recipe(stored)
            if found is None:
                raise InvalidTask("format", f"{env.ref} holds no recipe file")
            path = work / found[0]
            path.write_text(found[1])
            return Exported(path, found[0], _TEXT)
        return _renamed(stored, work / f"{stem}.context.tar", _TAR)
    if env.kind is Kind.APPTAINER_SIF:
        return _renamed(stored, work / f"{stem}.sif", _SIF)
    original = "ova" if content_type is ContentType.OVA else str(content_type)
    if fmt in ("original", original):
        suffix = ".ova" if original == "ova" else _DISK_SUFFIX[original]
        return _renamed(stored, work / f"{stem}{suffix}", _BINARY)
    path = work / f"{stem}{_DISK_SUFFIX[fmt]}"
    if content_type is ContentType.OVA:
        convert_ova(stored, path, fmt)
    else:
        convert_disk(stored, original, path, fmt)
    stored.unlink()
    return Exported(path, path.name, _BINARY)


def _renamed(stored: Path, path: Path, media_type: str) -> Exported:
    stored.replace(path)
    return Exported(path, path.name, media_type)
