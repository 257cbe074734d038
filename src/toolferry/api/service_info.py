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
            f"Site {site.config.name!r}: backends {', '.join(site.backends)} (default "
            f"{site.default_backend}), runtimes {', '.join(sorted(site.runtimes)) or 'none available'}"
            f"{f' (default {site.default_runtime})' if site.default_runtime else ''}. "
            "The backend parameters are described in the toolferry_backend_parameters field."
        ),
        "organization": {"name": settings.organization_name, "url": settings.organization_url},
        "documentationUrl": settings.organization_url,
        "createdAt": _STARTED,
        "updatedAt": _STARTED,
        "version": __version__,
        "storage": storage_locations(settings, site),
        "tesResources_backend_parameters": sorted(site.admission.backend_parameters()),
        # Not part of TES: what each backend parameter accepts, and the backends and
        # runtimes a task may choose from.
        "toolferry_backend_parameters": site.admission.backend_parameters(),
        "toolferry_backends": [
            {
                "name": b.name,
                "default": b.name == site.default_backend,
                "description": b.capabilities.description,
                "cpus": b.capabilities.total.cpus,
                "ram_gb": b.capabilities.total.ram_gb,
                "largest_task": {
                    "cpu_cores": b.capabilities.largest.cpus,
                    "ram_gb": b.capabilities.largest.ram_gb,
                    "disk_gb": b.capabilities.largest.disk_gb,
                },
                "runtimes": list(b.capabilities.runtimes or sorted(site.runtimes)),
                "parameters": sorted(b.capabilities.parameters),
            }
            for b in site.backends.values()
        ],
        "toolferry_unavailable_backends": dict(site.admission.unavailable_backends),
    }


def legacy_service_info(settings: Settings, site: Site) -> dict[str, Any]:
    """TES 1.0 ``ServiceInfo`` (name, doc, storage): all py-tes 0.4.x accepts."""
    info = service_info(settings, site)
    return {"name": info["name"], "doc": info["description"], "storage": info["storage"]}
