"""Runtime names to lazily imported classes; a new runtime is one module plus one line here."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from toolferry.config import Settings
from toolferry.runtimes.base import Runtime

_REGISTRY: dict[str, tuple[str, Callable[[Settings], dict[str, object]]]] = {
    "docker": ("toolferry.runtimes.docker:DockerRuntime", lambda s: {"docker_host": s.docker_host}),
    "none": ("toolferry.runtimes.none:NoneRuntime", lambda s: {"bwrap_path": s.bwrap_path}),
    "podman": (
        "toolferry.runtimes.podman:PodmanRuntime",
        lambda s: {
            "podman_path": s.podman_path,
            "global_args": s.podman_global_args,
            "ulimits": s.podman_ulimits,
        },
    ),
}

# Which runtime the embedded default prefers, best first.
PREFERENCE = ("docker", "podman", "none")


def build(name: str, settings: Settings) -> Runtime:
    target, kwargs = _REGISTRY[name]
    module, _, cls = target.partition(":")
    factory = getattr(importlib.import_module(module), cls)
    return factory(**kwargs(settings))  # type: ignore[no-any-return]


def discover(settings: Settings) -> tuple[dict[str, Runtime], dict[str, str]]:
    """Runtimes that answer on this machine, and why each other one does not."""
    available: dict[str, Runtime] = {}
    unavailable: dict[str, str] = {}
    for name in _REGISTRY:
        try:
            runtime = build(name, settings)
            reason = runtime.unavailable_reason()
        except Exception as exc:  # a broken runtime must not stop the hub
            reason = f"{type(exc).__name__}: {exc}"
        if reason is None:
            available[name] = runtime
        else:
            unavailable[name] = reason
    return available, unavailable
