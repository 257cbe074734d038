"""Fixtures for the web UI's browser tests: Debian's headless Chromium driven by Playwright, and
a hub with token auth on serving the UI on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from toolferry.config import Settings
from toolferry.hub import Hub, serve_embedded

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium (Playwright's own browser downloads are never used)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/setup.sh (installs Debian chromium)",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@dataclass
class WebHub:
    hub: Hub
    url: str
    tokens: dict[str, str]

    def submit(self, user: str, task: dict[str, Any]) -> str:
        response = httpx.post(
            f"{self.url}/ga4gh/tes/v1/tasks",
            json=task,
            headers={"Authorization": f"Bearer {self.tokens[user]}"},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["id"])


@pytest.fixture(scope="module")
def web_hub(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    """A hub with token auth on, running tasks in Docker; users alice and bob, admin root."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("web") / "data", runtime="docker", auth="token"
    )
    with serve_embedded(settings) as (hub, url):
        tokens = {}
        for user, admin in (("alice", False), ("bob", False), ("root", True)):
            tokens[user] = hub.tokens.create(user, admin=admin)[1]
        yield WebHub(hub=hub, url=url, tokens=tokens)
