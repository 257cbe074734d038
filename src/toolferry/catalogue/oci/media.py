"""Media types: OCI image spec v1.1, Docker image manifest v2 schema 2, and the artifact types
the catalogue stores.

References: https://github.com/opencontainers/image-spec/blob/v1.1.0/media-types.md and
https://distribution.github.io/distribution/spec/manifest-v2-2/.
"""

from __future__ import annotations

__all__ = [
    "ANNOTATION_CREATED",
    "ANNOTATION_REF_NAME",
    "ANNOTATION_TITLE",
    "ARTIFACT_OVA",
    "ARTIFACT_RECIPE",
    "ARTIFACT_SIF",
    "ARTIFACT_VM_DISK",
    "DISK_OVA",
    "DISK_QCOW2",
    "DISK_RAW",
    "DISK_VMDK",
    "DOCKER_CONFIG",
    "DOCKER_LAYER_GZIP",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "EMPTY_DIGEST",
    "EMPTY_JSON",
    "EMPTY_MEDIA_TYPE",
    "IMAGE_CONFIGS",
    "INDEXES",
    "MANIFESTS",
    "MANIFEST_ACCEPT",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_ZSTD",
    "OCI_MANIFEST",
    "RECIPE_TAR",
    "SIF_CONFIG",
    "SIF_LAYER",
    "is_index",
    "is_manifest",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})
# Sent on every manifest request: a registry converts (or refuses) what the client omits.
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))

# The empty descriptor of image-spec v1.1: an artifact without configuration points at ``{}``.
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

# Layers of single-file artifacts. There is no registered type for disk images; these follow
# the vendor tree (vnd.<producer>) as the image spec asks of artifact authors.
DISK_QCOW2 = "application/vnd.toolferry.disk.qcow2"
DISK_RAW = "application/vnd.toolferry.disk.raw"
DISK_VMDK = "application/vnd.toolferry.disk.vmdk"
DISK_OVA = "application/vnd.toolferry.disk.ova"
RECIPE_TAR = "application/vnd.toolferry.recipe.v1.tar"
# What SingularityCE/Apptainer push and pull (``oras://``): keep them for SIF so that those
# clients can read the catalogue's SIF artifacts unmodified.
SIF_CONFIG = "application/vnd.sylabs.sif.config.v1+json"
SIF_LAYER = "application/vnd.sylabs.sif.layer.v1.sif"

# ``artifactType`` of the catalogue's artifacts (one per environment kind that is not an image).
ARTIFACT_VM_DISK = "application/vnd.toolferry.environment.vm-disk.v1"
ARTIFACT_OVA = "application/vnd.toolferry.environment.ova.v1"
ARTIFACT_RECIPE = "application/vnd.toolferry.environment.recipe.v1"
ARTIFACT_SIF = SIF_CONFIG


def is_index(media_type: str) -> bool:
    return media_type in INDEXES


def is_manifest(media_type: str) -> bool:
    return media_type in MANIFESTS
