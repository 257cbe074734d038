"""What an image is, read from any store: platform, config, labels, creation time, size.

:func:`read_image` follows an index (or Docker manifest list) to the manifest of the wanted
platform and reads the image config blob (verified) — the metadata an importer fills an
environment entry from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.errors import DigestMismatch, PlatformNotFound
from toolferry.catalogue.oci.manifest import Manifest, parse_manifest
from toolferry.catalogue.oci.store import Descriptor, ImageStore, Platform, location
from toolferry.domain.errors import InvalidTask

__all__ = ["MAX_CONFIG_SIZE", "ImageInfo", "read_image", "read_manifest", "select_platform"]

MAX_CONFIG_SIZE = 8 << 20  # an image config is a few KiB; refuse to load a huge "config"
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class ImageInfo:
    """One platform's image: its manifest, config and the metadata in them."""

    repository: str
    descriptor: Descriptor  # the image manifest (what to pin for this platform)
    index: Descriptor | None  # the index it was chosen from (what to pin for every platform)
    config_descriptor: Descriptor
    config: Mapping[str, Any]
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def media_type(self) -> str:
        return self.descriptor.media_type

    @property
    def labels(self) -> dict[str, str]:
        """``config.Labels`` (where ``org.opencontainers.image.*`` annotations live in images)."""
        labels = (self.config.get("config") or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}

    @property
    def os(self) -> str:
        return str(self.config.get("os") or "")

    @property
    def architecture(self) -> str:
        return str(self.config.get("architecture") or "")

    @property
    def variant(self) -> str | None:
        variant = self.config.get("variant")
        return str(variant) if variant else None

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant)

    @property
    def created(self) -> datetime | None:
        """``config.created`` (RFC 3339; Go's nanoseconds are cut to microseconds)."""
        text = self.config.get("created")
        if not isinstance(text, str) or not text:
            return None
        try:
            when = datetime.fromisoformat(_FRACTION.sub(r"\1", text).replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    @property
    def size(self) -> int:
        """Bytes to transfer: config plus layers (compressed, as stored)."""
        return self.config_descriptor.size + sum(layer.size for layer in self.layers)


def read_manifest(
    store: ImageStore, repository: str, reference: str
) -> tuple[Descriptor, Manifest]:
    """The descriptor and parsed manifest (or index) a tag or digest names."""
    descriptor = store.resolve(repository, reference)
    data = store.manifest(repository, descriptor.digest)
    return descriptor, parse_manifest(data, descriptor.media_type)


def select_platform(index: Manifest, wanted: Platform, what: str) -> Descriptor:
    """The entry of ``index`` for ``wanted``: an exact variant match first, else (when no
    variant is wanted) the first entry of that os/architecture. PlatformNotFound lists the
    platforms there are."""
    matches = [d for d in index.manifests if d.platform and d.platform.matches(wanted)]
    if matches:
        if wanted.variant is None:
            plain = [d for d in matches if d.platform and d.platform.variant is None]
            return (plain or matches)[0]
        return matches[0]
    available = sorted(
        {str(d.platform) for d in index.manifests if d.platform and d.platform.os != "unknown"}
    )
    raise PlatformNotFound(what, str(wanted), available)


def read_image(
    store: ImageStore, repository: str, reference: str, platform: str = "linux/amd64"
) -> ImageInfo:
    """Reads the image a tag or digest names. ``platform`` picks a manifest from an index; a
    single-platform image is returned whatever its platform (compare ``.platform``)."""
    what = location(store, repository, reference)
    descriptor, parsed = read_manifest(store, repository, reference)
    index: Descriptor | None = None
    if parsed.is_index:
        index = descriptor
        chosen = select_platform(parsed, Platform.parse(platform), what)
        data = store.manifest(repository, chosen.digest)
        parsed = parse_manifest(data, chosen.media_type)
        if parsed.is_index:
            raise InvalidTask("reference", f"{what}: an index inside an index is not an image")
        descriptor = chosen
    config = parsed.config
    if config is None or config.media_type not in media.IMAGE_CONFIGS:
        kind = parsed.artifact_type or (config.media_type if config else "no config")
        raise InvalidTask("reference", f"{what} is an OCI artifact ({kind}), not a container image")
    if config.size > MAX_CONFIG_SIZE:
        raise InvalidTask("reference", f"{what}: its config is {config.size} bytes, too big")
    with store.open_blob(repository, config.digest) as stream:
        raw = stream.read(config.size + 1)
        if len(raw) != config.size or stream.read(1):
            raise DigestMismatch(
                f"config of {what} (not {config.size} bytes)", config.digest, "unknown"
            )
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidTask("reference", f"{what}: its config is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise InvalidTask("reference", f"{what}: its config is not a JSON object")
    return ImageInfo(
        repository=repository,
        descriptor=descriptor,
        index=index,
        config_descriptor=config,
        config=document,
        layers=parsed.layers,
        annotations=parsed.annotations,
    )
