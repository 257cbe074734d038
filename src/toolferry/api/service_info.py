"""GA4GH service-info 1.0 for the TES service, plus the TES 1.0 shape older clients expect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from toolferry import __version__
from toolferry.agent.site import Site
from toolferry.config import Settings

_STARTED = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def storage_locations(settings: Settings, site: Site) -> list[str]:
    locations = [f"file://{d}" for d in settings.allowed_dirs]
    locations += [f"{s}://" for s in site.storage.schemes if s != "file"]
    return locations


def service_info(settings: Settings, site: Site) -> dict[str, Any]:
    return {
        "id": settings.service_id,
        "name": "toolferry",
        "type": {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"},
        "description": (
            "toolferry runs containerised research tools where the data and compute are. "
            f"Site {site.config.name!r}: backend {site.backend.name}, runtimes "
            f"{', '.join(sorted(site.runtimes)) or 'none available'}"
            f"{f' (default {site.default_runtime})' if site.default_runtime else ''}."
        ),
        "organization": {"name": settings.organization_name, "url": settings.organization_url},
        "documentationUrl": settings.organization_url,
        "createdAt": _STARTED,
        "updatedAt": _STARTED,
        "version": __version__,
        "storage": storage_locations(settings, site),
        "tesResources_backend_parameters": sorted(site.admission.backend_parameters()),
    }


def legacy_service_info(settings: Settings, site: Site) -> dict[str, Any]:
    """TES 1.0 ``ServiceInfo`` (name, doc, storage): all py-tes 0.4.x accepts."""
    info = service_info(settings, site)
    return {"name": info["name"], "doc": info["description"], "storage": info["storage"]}
