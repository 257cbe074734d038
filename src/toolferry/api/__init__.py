"""The HTTP edge (FastAPI): TES at /ga4gh/tes/v1 and /v1, health; schemas separate from domain."""
