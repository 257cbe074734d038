"""What the site accepts: a task it cannot run is refused at submission, naming the field.

Capabilities are data (backend parameters, runtimes and what they enforce, storage schemes,
capacity), so a task never fails half-way for a reason known up front.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from toolferry.agent.capacity import Capacity
from toolferry.backends.base import BackendCapabilities
from toolferry.domain.errors import InvalidTask
from toolferry.domain.limits import LIMITED_STATES, parameter
from toolferry.domain.rules import has_wildcard
from toolferry.domain.task import FileType, Resources, TaskSpec
from toolferry.runtimes.base import Runtime
from toolferry.security.identity import LOCAL, Identity
from toolferry.storage.router import StorageRouter, scheme_of
from toolferry.worker.layout import mount_dir

NETWORK_VALUES = ("none", "host")

# (url, user, is_admin) -> None, or why ``user`` may not use ``url``.
AccessCheck = Callable[[str, str, bool], str | None]
_PARAMS = "resources.backend_parameters"
# Backend parameters every backend reads.
_GENERIC = frozenset(
    {
        "backend",
        "runtime",
        "network",
        "max_attempts",
        "encrypt_outputs",
        *(parameter(s) for s in LIMITED_STATES),
    }
)


class Admission:
    def __init__(
        self,
        *,
        backends: Sequence[BackendCapabilities],
        check: Callable[[str, TaskSpec], str | None],
        runtimes: dict[str, Runtime],
        default_runtime: str | None,
        unavailable: dict[str, str],
        storage: StorageRouter,
        capacities: Mapping[str, Capacity],
        allow_task_network: bool,
        access_checks: Mapping[str, AccessCheck] | None = None,
        unavailable_backends: Mapping[str, str] | None = None,
    ) -> None:
        """``backends``: what each backend can do, the default first; ``check(name, spec)``
        asks backend ``name`` about its own parameters. ``access_checks``: per URL scheme,
        whether a user may use a URL (reason if not)."""
        self.backends = {b.name: b for b in backends}
        self.default_backend = backends[0].name
        self.check_backend = check
        self.runtimes = runtimes
        self.default_runtime = default_runtime
        self.unavailable = unavailable  # runtime name → why it cannot run here
        self.unavailable_backends = dict(unavailable_backends or {})
        self.storage = storage
        self.capacities = capacities
        self.allow_task_network = allow_task_network
        self.access_checks = dict(access_checks or {})

    def backend_parameters(self) -> dict[str, str]:
        """Supported ``resources.backend_parameters`` keys and what they accept."""
        params = {
            "backend": "where the worker runs; one of: "
            + ", ".join(self.backends)
            + f" (default {self.default_backend}; a task too large for it goes to the first "
            "that can hold it)",
            "runtime": "how executors run; one of: "
            + ", ".join(sorted(self.runtimes))
            + (f" (default {self.default_runtime})" if self.default_runtime else ""),
            "network": "none (default) or host: give executors the host network"
            + ("" if self.allow_task_network else " (refused by this site)"),
            "max_attempts": "1 to 10: attempts when an attempt ends in a system error "
            "(default: the site's)",
            "encrypt_outputs": "true: the data site seals each output to the owner's public key "
            "(toolferry keys create); for tasks at a data site",
            **{
                parameter(state): f"seconds the task may stay {state} (at most the site's)"
                for state in LIMITED_STATES
            },
        }
        for backend in self.backends.values():
            for key, what in backend.parameters.items():
                params.setdefault(key, f"backend {backend.name}: {what}")
        return params

    def admit(self, spec: TaskSpec, who: Identity = LOCAL) -> tuple[TaskSpec, list[str]]:
        """Check ``spec`` of a task ``who`` submits against what this site can do; return it
        with only supported backend parameters (lower-cased keys; ``backend`` set when the
        task had to leave the default backend) and the warnings to log. Raises
        :class:`InvalidTask`."""
        res = spec.resources or Resources()
        kept, warnings = self._backend_parameters(res)
        backend = self._choose_backend(spec, kept)
        if backend != self.default_backend and "backend" not in kept:
            kept["backend"] = backend
            warnings.append(
                f"runs on backend {backend}: the default backend {self.default_backend} "
                "cannot hold it"
            )
        runtime = self._runtime(kept.get("runtime", self._default_runtime(backend)))
        self._check_network(kept.get("network", "none"))
        self._check_attempts(kept.get("max_attempts"))
        if kept.get("encrypt_outputs", "false").lower() != "false":
            raise InvalidTask(
                f"{_PARAMS}.encrypt_outputs",
                "only a data site seals outputs (a task reading dataset:// inputs, or with the "
                "backend parameter site)",
            )
        for state in LIMITED_STATES:
            self._check_seconds(parameter(state), kept.get(parameter(state)))
        self._check_stdin(spec, runtime)
        self._check_storage(spec)
        self.check_access(spec, who)
        self._check_paths(spec, runtime)
        warnings += self._unenforced(res, runtime, self.backends[backend])
        resources = replace(res, backend_parameters=kept or None)
        if spec.resources is None and not kept:
            return spec, warnings
        return replace(spec, resources=resources), warnings

    def _backend_parameters(self, res: Resources) -> tuple[dict[str, str], list[str]]:
        supported = self.backend_parameters()
        kept: dict[str, str] = {}
        warnings: list[str] = []
        for key, value in (res.backend_parameters or {}).items():
            lower = key.lower()
            if lower in supported:
                kept[lower] = value
            elif res.backend_parameters_strict:
                raise InvalidTask(
                    f"{_PARAMS}.{key}",
                    "is not supported by this service (backend_parameters_strict is set); "
                    f"supported keys: {', '.join(sorted(supported))}",
                )
            else:
                warnings.append(f"backend parameter {key!r} is not supported here and was ignored")
        return kept, warnings

    def _default_runtime(self, backend: str) -> str | None:
        return self.backends[backend].default_runtime or self.default_runtime

    def _choose_backend(self, spec: TaskSpec, kept: dict[str, str]) -> str:
        """The backend the task asked for, else the default, else the first that can hold
        it; InvalidTask naming why none can."""
        asked = kept.get("backend")
        if asked is not None:
            if asked not in self.backends:
                why = self.unavailable_backends.get(asked, "unknown backend")
                raise InvalidTask(
                    f"{_PARAMS}.backend",
                    f"backend {asked!r} cannot be used here: {why}; available: "
                    + ", ".join(self.backends),
                )
            misfit = self._misfit(asked, spec, kept)
            if misfit is not None:
                raise InvalidTask(*misfit)
            return asked
        misfits: dict[str, tuple[str, str]] = {}
        for name in self.backends:
            misfit = self._misfit(name, spec, kept)
            if misfit is None:
                return name
            misfits[name] = misfit
        field, reason = misfits[self.default_backend]
        others = [f"backend {n}: {r}" for n, (_, r) in misfits.items() if n != self.default_backend]
        raise InvalidTask(
            field,
            reason
            + (f" (and no other backend can hold it: {'; '.join(others)})" if others else ""),
        )

    def _misfit(self, name: str, spec: TaskSpec, kept: dict[str, str]) -> tuple[str, str] | None:
        """Why backend ``name`` cannot run the task (field, reason), or None."""
        backend = self.backends[name]
        for key in kept:
            if key not in _GENERIC and key not in backend.parameters:
                readers = [b.name for b in self.backends.values() if key in b.parameters]
                return (
                    f"{_PARAMS}.{key}",
                    f"is read by backend {', '.join(readers)} only, not {name}",
                )
        runtime = kept.get("runtime", self._default_runtime(name))
        known = runtime is not None and runtime in self.runtimes  # else _runtime says why
        if backend.runtimes is not None and known and runtime not in backend.runtimes:
            return (
                f"{_PARAMS}.runtime",
                f"backend {name} runs executors with {', '.join(backend.runtimes) or 'no runtime'}, "
                f"not {runtime}",
            )
        if known and runtime is not None and not self.runtimes[runtime].capabilities.stdin:
            for i, ex in enumerate(spec.executors):
                if ex.stdin:
                    return (
                        f"executors[{i}].stdin",
                        f"runtime {runtime} cannot feed an executor's stdin",
                    )
        need = self.capacities[name].booking(spec)
        largest = backend.largest
        if need.cpus > largest.cpus:
            return (
                "resources.cpu_cores",
                f"asks for {need.cpus:g} cores; backend {name} has at most {largest.cpus:g} for one task",
            )
        if need.ram_gb > largest.ram_gb:
            return (
                "resources.ram_gb",
                f"asks for {need.ram_gb:g} GB; backend {name} has at most {largest.ram_gb:g} GB for one task",
            )
        disk = spec.resources.disk_gb if spec.resources else None
        if disk and largest.disk_gb is not None and disk > largest.disk_gb:
            return (
                "resources.disk_gb",
                f"asks for {disk:g} GB; backend {name} has at most {largest.disk_gb:g} GB for one task",
            )
        problem = self.check_backend(name, spec)
        if problem is not None:
            return _PARAMS, problem
        return None

    def _runtime(self, name: str | None) -> Runtime:
        if name is not None and name in self.runtimes:
            return self.runtimes[name]
        if name is None:
            why = "; ".join(f"{n}: {r}" for n, r in sorted(self.unavailable.items()))
            raise InvalidTask(f"{_PARAMS}.runtime", f"no runtime is available on this site ({why})")
        reason = self.unavailable.get(name, "unknown runtime")
        raise InvalidTask(
            f"{_PARAMS}.runtime",
            f"runtime {name!r} cannot be used here: {reason}; available: "
            + (", ".join(sorted(self.runtimes)) or "none"),
        )

    def _check_network(self, network: str) -> None:
        if network not in NETWORK_VALUES:
            raise InvalidTask(
                f"{_PARAMS}.network", f"must be one of {', '.join(NETWORK_VALUES)}, got {network!r}"
            )
        if network == "host" and not self.allow_task_network:
            raise InvalidTask(f"{_PARAMS}.network", "this site does not let tasks use the network")

    @staticmethod
    def _check_attempts(value: str | None) -> None:
        if value is not None and not (value.isdigit() and 1 <= int(value) <= 10):
            raise InvalidTask(
                f"{_PARAMS}.max_attempts", f"must be a whole number from 1 to 10, got {value!r}"
            )

    @staticmethod
    def _check_seconds(key: str, value: str | None) -> None:
        if value is None:
            return
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not (0 < seconds < float("inf")):
            raise InvalidTask(
                f"{_PARAMS}.{key}", f"must be a number of seconds above 0, got {value!r}"
            )

    @staticmethod
    def _check_stdin(spec: TaskSpec, runtime: Runtime) -> None:
        if runtime.capabilities.stdin:
            return
        for i, ex in enumerate(spec.executors):
            if ex.stdin:
                raise InvalidTask(
                    f"executors[{i}].stdin",
                    f"runtime {runtime.name} cannot feed an executor's stdin",
                )

    def _check_storage(self, spec: TaskSpec) -> None:
        for i, inp in enumerate(spec.inputs):
            if inp.content is None and inp.url:
                directory = inp.type is FileType.DIRECTORY
                self._check_url(f"inputs[{i}].url", inp.url, write=False, directory=directory)
        for i, out in enumerate(spec.outputs):
            # A wildcard may match folders as well as files.
            directory = out.type is FileType.DIRECTORY or has_wildcard(out.path)
            self._check_url(f"outputs[{i}].url", out.url, write=True, directory=directory)
        paths = [i.path.rstrip("/") for i in spec.inputs]
        if len(set(paths)) != len(paths):
            raise InvalidTask("inputs", "two inputs share one path")
        for i, path in enumerate(paths):
            for j, other in enumerate(spec.inputs):
                if other.type is FileType.DIRECTORY and path.startswith(paths[j] + "/"):
                    raise InvalidTask(
                        f"inputs[{i}].path",
                        f"{path} lies inside the DIRECTORY input {paths[j]} (inputs[{j}]); "
                        "inputs are mounted read-only and cannot nest",
                    )
        folders = {v.rstrip("/") or "/" for v in spec.volumes}
        folders |= {o.path.rstrip("/") for o in spec.outputs if o.type is FileType.DIRECTORY}
        for i, path in enumerate(paths):
            if path in folders:
                raise InvalidTask(
                    f"inputs[{i}].path", f"{path} is also a volume or an output folder"
                )
        urls = [o.url for o in spec.outputs if not has_wildcard(o.path)]
        for url in {u for u in urls if urls.count(u) > 1}:
            raise InvalidTask("outputs", f"two outputs would both be uploaded to {url}")

    def check_access(self, spec: TaskSpec, who: Identity) -> None:
        """URLs of schemes whose objects belong to users (hub:// file spaces) must be the
        submitter's own."""
        urls = [
            (f"inputs[{i}].url", inp.url)
            for i, inp in enumerate(spec.inputs)
            if inp.url and inp.content is None
        ]
        urls += [(f"outputs[{i}].url", out.url) for i, out in enumerate(spec.outputs)]
        for field, url in urls:
            check = self.access_checks.get(scheme_of(url))
            reason = check(url, who.user, who.admin) if check is not None else None
            if reason:
                raise InvalidTask(field, reason)

    def _check_url(self, field: str, url: str, *, write: bool, directory: bool) -> None:
        reason = self.storage.check(url, write=write, directory=directory)
        if reason:
            raise InvalidTask(field, reason)

    @staticmethod
    def _check_paths(spec: TaskSpec, runtime: Runtime) -> None:
        """Refuse paths the runtime cannot mount or enter, naming the field."""
        fields: list[tuple[str, str]] = []
        for i, ex in enumerate(spec.executors):
            if ex.workdir:
                fields.append((f"executors[{i}].workdir", ex.workdir))
            for name in ("stdout", "stderr"):
                value = getattr(ex, name)
                if value:  # written by the host into the folder mounted there
                    fields.append((f"executors[{i}].{name}", posixpath.dirname(value)))
        fields += [(f"inputs[{i}].path", inp.path) for i, inp in enumerate(spec.inputs)]
        fields += [(f"volumes[{i}]", v) for i, v in enumerate(spec.volumes)]
        for i, out in enumerate(spec.outputs):
            if has_wildcard(out.path):
                folder = mount_dir(out.path)
            elif out.type is FileType.DIRECTORY:
                folder = out.path
            else:
                folder = posixpath.dirname(out.path)
            fields.append((f"outputs[{i}].path", folder))
        for field, path in fields:
            if path == "/" and not field.startswith(("volumes", "executors")):
                raise InvalidTask(
                    field,
                    "a file directly under / cannot be mounted into the executor; put it in a "
                    "folder (for example /data/...)",
                )
            problem = runtime.path_problem([path])
            if problem:
                raise InvalidTask(field, f"{problem} (runtime {runtime.name})")

    @staticmethod
    def _unenforced(res: Resources, runtime: Runtime, backend: BackendCapabilities) -> list[str]:
        caps = runtime.capabilities
        notes = []
        if res.cpu_cores and not caps.enforces_cpu:
            notes.append(
                f"runtime {runtime.name} does not limit cpu_cores; "
                "they are reserved for scheduling only"
            )
        if res.ram_gb and not caps.enforces_ram:
            notes.append(
                f"runtime {runtime.name} does not limit ram_gb; it is reserved for scheduling only"
            )
        if res.disk_gb and backend.largest.disk_gb is None:
            notes.append(f"disk_gb is not reserved or limited by backend {backend.name}")
        if res.zones:
            notes.append("zones are not used by this site (it has one)")
        if res.preemptible:
            notes.append("this site has no preemptible capacity; the task runs as usual")
        return notes
