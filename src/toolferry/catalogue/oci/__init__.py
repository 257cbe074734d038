"""OCI storage of catalogue environments: registries and image-layout directories behind one
interface, with copying, single-file artifacts and archives.

- :mod:`.reference` ``parse_reference("host:port/repo:tag@sha256:...")`` → :class:`Reference`
- :mod:`.store` the :class:`ImageStore` protocol and :class:`Descriptor`;
  implementations :class:`RegistryStore` (:mod:`.registry`, distribution API) and
  :class:`LayoutStore` (:mod:`.layout`, ``root/<repository>/`` image layouts)
- :mod:`.image` :func:`read_image` → :class:`ImageInfo` (platform, config, labels, size)
- :mod:`.artifact` :func:`push_artifact` / :func:`read_artifact` / :func:`pull_artifact`
- :mod:`.copy` :func:`copy_image` between any two stores
- :mod:`.archive` / :mod:`.archive_import` OCI and Docker archives out of and into a store
- :mod:`.errors` DigestMismatch, PlatformNotFound, StoreError, RegistryUnavailable; missing
  things raise NotFound, refused credentials Forbidden, bad input InvalidTask (domain errors)
"""

from toolferry.catalogue.oci.archive import export_docker_archive, export_oci_archive
from toolferry.catalogue.oci.archive_import import import_docker_archive, import_oci_archive
from toolferry.catalogue.oci.artifact import (
    ArtifactInfo,
    pull_artifact,
    push_artifact,
    read_artifact,
)
from toolferry.catalogue.oci.copy import Copied, copy_image
from toolferry.catalogue.oci.errors import (
    DigestMismatch,
    PlatformNotFound,
    RegistryUnavailable,
    StoreError,
)
from toolferry.catalogue.oci.image import ImageInfo, read_image, read_manifest
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.catalogue.oci.reference import Reference, parse_reference
from toolferry.catalogue.oci.registry import RegistryStore, registry_url
from toolferry.catalogue.oci.store import Descriptor, ImageStore, Platform

__all__ = [
    "ArtifactInfo",
    "Copied",
    "Descriptor",
    "DigestMismatch",
    "ImageInfo",
    "ImageStore",
    "LayoutStore",
    "Platform",
    "PlatformNotFound",
    "Reference",
    "RegistryStore",
    "RegistryUnavailable",
    "StoreError",
    "copy_image",
    "export_docker_archive",
    "export_oci_archive",
    "import_docker_archive",
    "import_oci_archive",
    "parse_reference",
    "pull_artifact",
    "push_artifact",
    "read_artifact",
    "read_image",
    "read_manifest",
    "registry_url",
]
