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
            "What each backend and backend parameter offers: GET /api/v1/site."
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


def site_info(site: Site) -> dict[str, Any]:
    """The site's backends and runtimes, and what each backend parameter accepts."""
    return {
        "name": site.config.name,
        "replica": site.replica_id,
        "default_backend": site.default_backend,
        "backends": [
            {
                "name": b.name,
                "description": b.capabilities.description,
                "total": {
                    "cpu_cores": b.capabilities.total.cpus,
                    "ram_gb": b.capabilities.total.ram_gb,
                    "disk_gb": b.capabilities.total.disk_gb,
                },
                "largest_task": {
                    "cpu_cores": b.capabilities.largest.cpus,
                    "ram_gb": b.capabilities.largest.ram_gb,
                    "disk_gb": b.capabilities.largest.disk_gb,
                },
                "free": dict(
                    zip(("cpu_cores", "ram_gb"), site.capacities[b.name].free(), strict=True)
                ),
                "runtimes": list(b.capabilities.runtimes or sorted(site.runtimes)),
                "default_runtime": b.capabilities.default_runtime or site.default_runtime,
                "parameters": dict(b.capabilities.parameters),
            }
            for b in site.backends.values()
        ],
        "unavailable_backends": dict(site.admission.unavailable_backends),
        "runtimes": sorted(site.runtimes),
        "default_runtime": site.default_runtime,
        "unavailable_runtimes": dict(site.admission.unavailable),
        "backend_parameters": site.admission.backend_parameters(),
    }
