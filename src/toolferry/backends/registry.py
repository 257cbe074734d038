"""Backend names to lazily imported factories; a new backend is one module plus one line here.

``local`` is always there. The others are enabled where they answer on this machine (a Slurm
controller, an active Swarm) unless the ``backends`` setting names which to use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

from toolferry.backends.base import Backend
from toolferry.config import Settings
from toolferry.runtimes.base import Runtime

# (settings, the site's runtimes) -> a backend, or BackendUnavailable saying why not.
Factory = Callable[[Settings, Mapping[str, Runtime]], Backend]

_REGISTRY: dict[str, str] = {
    "slurm": "toolferry.backends.factories:slurm",
    "swarm": "toolferry.backends.factories:swarm",
}

NAMES = ("local", *_REGISTRY)


def build(name: str, settings: Settings, runtimes: Mapping[str, Runtime]) -> Backend:
    module, _, attr = _REGISTRY[name].partition(":")
    factory: Factory = getattr(importlib.import_module(module), attr)
    return factory(settings, runtimes)


def discover(
    settings: Settings, runtimes: Mapping[str, Runtime], *, only: list[str] | None = None
) -> tuple[list[Backend], dict[str, str]]:
    """The backends besides ``local`` that answer (of ``only``, when given), and why each
    other one does not."""
    available: list[Backend] = []
    unavailable: dict[str, str] = {}
    for name in _REGISTRY:
        if only is not None and name not in only:
            unavailable[name] = "not enabled by the backends setting"
            continue
        try:
            available.append(build(name, settings, runtimes))
        except Exception as exc:  # a broken backend must not stop the hub
            unavailable[name] = str(exc) or type(exc).__name__
    return available, unavailable
