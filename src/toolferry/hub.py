"""Wiring: build the hub (store, site, scheduler, API) from settings; run it embedded or served.

This is the one place that knows every layer; the layers know only their interfaces.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from toolferry import wiring
from toolferry.agent.lock import SiteBusy, SiteLock
from toolferry.agent.replicas import ReplicaMonitor
from toolferry.agent.site import Site, SiteConfig
from toolferry.api.app import create_app
from toolferry.api.auth import Authenticator
from toolferry.backends import registry as backend_registry
from toolferry.backends.base import Backend, Size
from toolferry.backends.local import LocalBackend
from toolferry.catalogue.artifacts import open_artifacts
from toolferry.catalogue.deployments import count_deployments
from toolferry.catalogue.engine import Engine
from toolferry.catalogue.images import ImageResolver
from toolferry.catalogue.importing import Importer
from toolferry.catalogue.matching import local_execution_environment
from toolferry.catalogue.oci.registry import RegistryStore
from toolferry.catalogue.running import EngineImages, reserved_images
from toolferry.catalogue.service import CatalogueService
from toolferry.config import Settings
from toolferry.domain.environment import Review
from toolferry.domain.errors import InvalidTask
from toolferry.domain.execution import ExecutionEnvironment
from toolferry.domain.limits import TimeLimits
from toolferry.domain.retry import RetryPolicy
from toolferry.runtimes import registry
from toolferry.runtimes.base import Runtime
from toolferry.scheduler.scheduler import Scheduler
from toolferry.scheduler.service import TaskService
from toolferry.scheduler.sites import SiteService
from toolferry.security.identity import Identity
from toolferry.security.tokens import TokenService
from toolferry.storage.base import Storage, StorageError
from toolferry.storage.router import scheme_of
from toolferry.store.db import Database
from toolferry.store.environments import SqlEnvironmentStore
from toolferry.store.keys import SqlKeyStore
from toolferry.store.listen import QueueListener
from toolferry.store.replicas import SqlReplicaStore
from toolferry.store.sites import SqlSiteStore
from toolferry.store.sql import SqlTaskStore, SqlTokenStore
from toolferry.worker.janitor import run_pending_chores

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """The configuration does not allow what was asked (e.g. no auth on a public address)."""


class HubBusy(ConfigError):
    """Another hub process already serves this data directory."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Hub:
    """Everything one hub process runs: the store, the hub's own site, scheduler and API."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        runtimes: dict[str, Runtime] | None = None,
        storages: Sequence[Storage] = (),
    ) -> None:
        """``runtimes`` replaces discovery (embedding, tests); by default every runtime that
        answers on this machine is used. ``storages``: more URL schemes its site serves (a
        data site's agent adds its datasets)."""
        self.settings = settings or Settings()
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        s.storage_dir.mkdir(parents=True, exist_ok=True)
        # The hub's file store (hub:// URLs): what clients upload for their tasks.
        self.files = wiring.hub_files(s)
        self.db = Database.connect(s.effective_database_url)
        self.store = SqlTaskStore(self.db)
        self.tokens = TokenService(SqlTokenStore(self.db))
        self.user_credentials = wiring.user_credentials(s, self.db)
        # Published content: the configured OCI registry, else an OCI layout in DATA_DIR/oci.
        password = s.catalogue_registry_password
        self.artifacts = open_artifacts(
            registry=s.catalogue_registry,
            layout_root=s.data_dir / "oci",
            namespace=s.catalogue_namespace,
            username=s.catalogue_registry_username,
            password=password.get_secret_value() if password else None,
        )
        self.catalogue = CatalogueService(
            SqlEnvironmentStore(self.db),
            deployments=lambda: count_deployments(self.store),
            recipes=self.artifacts.recipe,
        )
        self.local_secret = secrets.token_urlsafe(32)
        self.authenticate = Authenticator(self.tokens, s.auth, self.local_secret, s.groups)
        self.retry = RetryPolicy(
            max_attempts=s.max_attempts,
            backoff_s=s.retry_backoff_s,
            backoff_max_s=s.retry_backoff_max_s,
        )
        self.limits = TimeLimits(
            queued_s=s.time_limit_queued_s,
            initializing_s=s.time_limit_initializing_s,
            running_s=s.time_limit_running_s,
        )
        discovering = runtimes is None
        if runtimes is None:
            runtimes, unavailable = registry.discover(s)
        else:
            unavailable = {}
        self.runtime_choice = self._choose_runtime(runtimes, unavailable)
        backends, self.unavailable_backends = self._backends(runtimes, discover=discovering)
        # Runtimes a backend brings (Swarm services) serve that backend only.
        site_runtimes = {**runtimes}
        for backend in backends:
            site_runtimes.update(backend.runtimes)
        self.site = Site(
            config=SiteConfig(
                name="local",
                work_dir=s.work_dir,
                default_cpu_cores=min(s.default_cpu_cores, s.capacity_cpus),
                default_ram_gb=min(s.default_ram_gb, s.capacity_ram_gb),
                allow_task_network=s.allow_task_network,
                log_tail_bytes=s.log_tail_bytes,
                keep_work_dirs=s.keep_work_dirs,
                retry=self.retry,
                limits=self.limits,
            ),
            store=self.store,
            backends=backends,
            unavailable_backends=self.unavailable_backends,
            runtimes=site_runtimes,
            default_runtime=self.runtime_choice[0] if self.runtime_choice[0] in runtimes else None,
            unavailable=unavailable,
            transfers=wiring.transfers(s, self.files, storages),
            # hub:// spaces belong to users; a data site's hub:// is the central hub's, which
            # checked them at submission.
            access_checks={}
            if any("hub" in extra.schemes for extra in storages)
            else {
                "hub": lambda url, user, admin: self.files.check_access(url, user, is_admin=admin)
            },
            credentials=wiring.credential_resolver(s, self.user_credentials),
            replica_id=secrets.token_hex(8),
            claim_at_dispatch=not self.db.is_sqlite,
        )
        self.engine = Engine(s.docker_host)
        scratch = s.data_dir / "tmp" / "catalogue"
        self.importer = Importer(
            self.catalogue,
            self.artifacts,
            engine=self.engine,
            open_registry=self.open_registry,
            work_dir=scratch,
        )
        self.images = ImageResolver(
            self.catalogue,
            EngineImages(self.artifacts, self.engine, scratch),
            require_review=Review(s.catalogue_require_review),
            reserved=reserved_images(self.artifacts),
        )
        self.keys = SqlKeyStore(self.db)
        self.sites = SiteService(
            SqlSiteStore(self.db, self.store),
            self.store,
            self.keys,
            offline_after=timedelta(seconds=s.site_offline_s),
        )
        self.tasks = TaskService(
            self.store,
            self.site,
            max_content_bytes=s.max_content_bytes,
            resolve_images=self.images.resolve,
            sites=self.sites,
        )
        self.scheduler = Scheduler(
            self.store,
            self.site,
            retry=self.retry,
            limits=self.limits,
            sweeps=[self.sites.end_overdue],
        )
        self.lease_lost = False
        self.listener: QueueListener | None = None
        self._started = False
        self._lock = SiteLock(s.data_dir)
        # Where CLI commands on this machine reach the hub (hub.json): a wildcard bind is
        # reached through loopback.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(s.host, s.host)
        host = f"[{host}]" if ":" in host else host
        self.url = f"http://{host}:{s.port}"

    def fetch_for(self, who: Identity, url: str, dest: Path) -> None:
        """Download the file at ``url`` for ``who``, as their tasks would: the schemes this
        site allows, their own hub:// spaces, their storage credentials."""
        reason = self.site.storage.check(url, write=False)
        if reason is None:
            check = self.site.admission.access_checks.get(scheme_of(url))
            reason = check(url, who.user, who.admin) if check is not None else None
        if reason:
            raise InvalidTask("url", reason)
        credential = self.site.credentials.for_owner(who.user)(url)
        try:
            self.site.storage.get(url, dest, directory=False, credential=credential)
        except StorageError as exc:
            raise InvalidTask("url", str(exc)) from None

    @contextmanager
    def open_registry(self, host: str) -> Iterator[RegistryStore]:
        """A registry a caller names, anonymously (the catalogue's own credentials are only
        for its own copies)."""
        with RegistryStore.for_host(host) as store:
            yield store

    def execution_environments(self) -> list[ExecutionEnvironment]:
        """Where this hub runs tasks: its own site on the local backend."""
        s = self.settings
        return [
            local_execution_environment(
                name=self.site.config.name,
                cpus=s.capacity_cpus,
                ram_gb=s.capacity_ram_gb,
                runtimes=sorted(self.site.runtimes),
                disk_path=s.work_dir,
            )
        ]

    def _backends(
        self, runtimes: dict[str, Runtime], *, discover: bool
    ) -> tuple[list[Backend], dict[str, str]]:
        """``local`` and the backends that answer (or those the settings name), the default
        first. With runtimes given by the caller (embedding, tests) only those the settings
        name are looked for."""
        s = self.settings
        local = LocalBackend(
            Size(
                cpus=s.capacity_cpus,
                ram_gb=s.capacity_ram_gb,
                disk_gb=s.capacity_disk_gb or None,
            ),
            runtime_names=tuple(sorted(runtimes)),
        )
        only = s.backends if s.backends is not None or discover else []
        others, unavailable = backend_registry.discover(s, runtimes, only=only)
        backends: list[Backend] = [local, *others]
        names = [b.name for b in backends]
        if s.backend not in names:
            why = unavailable.get(s.backend, "unknown backend")
            raise ConfigError(
                f"the default backend {s.backend!r} (TOOLFERRY_BACKEND) cannot be used: {why}; "
                f"available: {', '.join(names)}"
            )
        for name, why in unavailable.items():
            log.info("backend %s is not used: %s", name, why)
        backends.sort(key=lambda b: b.name != s.backend)
        return backends, unavailable

    def _choose_runtime(
        self, runtimes: dict[str, Any], unavailable: dict[str, str]
    ) -> tuple[str, str]:
        wanted = self.settings.runtime
        if wanted != "auto":
            if wanted in runtimes:
                return wanted, f"configured (TOOLFERRY_RUNTIME={wanted})"
            return wanted, f"configured but unavailable: {unavailable.get(wanted, 'unknown')}"
        for name in (*registry.PREFERENCE, *sorted(runtimes)):
            if name in runtimes:
                skipped = [
                    f"{n}: {unavailable[n]}" for n in registry.PREFERENCE if n in unavailable
                ]
                why = "the first available of " + ", ".join(registry.PREFERENCE)
                if name == "docker":
                    why = "a Docker Engine answered"
                elif skipped:
                    why = "; ".join(skipped)
                return name, why
        return "none", "no runtime is available: " + "; ".join(
            f"{n}: {r}" for n, r in unavailable.items()
        )

    @cached_property
    def app(self) -> FastAPI:
        return create_app(self)

    def identity(self, request: Request) -> Identity:
        return self.authenticate(request)

    def check_bind(self, host: str) -> None:
        """Refuse to serve a non-loopback address without authentication; once bound to one,
        authentication stays on even if every token is revoked later."""
        if is_loopback(host):
            return
        if self.settings.auth == "none":
            raise ConfigError(
                f"refusing to listen on {host} with TOOLFERRY_AUTH=none: anyone who can reach "
                "it could run code here. Bind 127.0.0.1, or set TOOLFERRY_AUTH=token and create "
                "a token with `toolferry token create --user NAME`."
            )
        if not self.authenticate.required() and not self.tokens.any_active():
            raise ConfigError(
                f"refusing to listen on {host} without authentication: no token exists. Create "
                "one with `toolferry token create --user NAME` (and set TOOLFERRY_AUTH=token)."
            )
        self.authenticate.mode = "token"

    def claim(self) -> None:
        """Become the one hub of this data directory; HubBusy if another process is."""
        try:
            self._lock.acquire()
        except SiteBusy as exc:
            raise HubBusy(str(exc)) from None

    def start(self) -> None:
        """Claim the data dir, re-attach to surviving tasks, start scheduling, announce."""
        if self._started:
            return
        self.claim()
        self._started = True
        # Imports and exports a killed hub left half-done: only this hub uses the data dir.
        shutil.rmtree(self.settings.data_dir / "tmp" / "catalogue", ignore_errors=True)
        self.replicas = ReplicaMonitor(
            SqlReplicaStore(self.db),
            self.site,
            url=self.url,
            lease_s=self.settings.replica_lease_s,
            exclusive=self.db.is_sqlite,
            on_lease_lost=self._lease_lost,
        )
        self.replicas.start()  # takes over what dead replicas (or the last hub) left
        self.scheduler.start()
        if not self.db.is_sqlite:  # other replicas' new tasks wake this one's scheduler
            self.listener = QueueListener(
                self.settings.effective_database_url, self._queued_elsewhere
            )
            self.listener.start()
        self._lock.announce(self.url, self.local_secret)

    def _queued_elsewhere(self, task_id: str) -> None:
        if self.site.has_room():
            self.scheduler.wake()

    def _lease_lost(self) -> None:
        """Other replicas declared this one dead and took its tasks: stop running any."""
        self.lease_lost = True
        self.scheduler.stop()
        self.site.detach()

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        self.scheduler.stop()
        self.site.detach()
        self.replicas.stop()
        run_pending_chores(timeout=10)
        self._lock.release()

    def close(self) -> None:
        self.stop()
        self._lock.release()
        self.artifacts.close()
        self.db.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_embedded(
    settings: Settings | None = None, *, runtimes: dict[str, Runtime] | None = None
) -> Iterator[tuple[Hub, str]]:
    """Run a hub and its HTTP API on 127.0.0.1 in a background thread; yield (hub, base URL)."""
    hub = Hub(settings, runtimes=runtimes)
    try:
        hub.claim()
    except HubBusy:
        hub.close()
        raise
    port = _free_port()
    hub.url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        hub.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="embedded-hub", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            hub.close()
            raise RuntimeError("the embedded hub did not start")
        time.sleep(0.01)
    try:
        yield hub, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        hub.close()
