"""The web UI in a real headless Chromium, as a person uses it: sign in with the keyboard, see
only one's own tasks, follow a task's logs live to its end, cancel a running task, see the data
sites. A screenshot of each page lands in test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.web.conftest import WebHub

from toolferry.domain.states import State
from toolferry.security.identity import Identity

pytestmark = pytest.mark.integration

TIMEOUT_MS = 30_000


def _sh(script: str) -> dict[str, Any]:
    return {"image": "toolferry-test/busybox:1", "command": ["sh", "-c", script]}


@pytest.fixture(scope="module")
def page(browser: Any, web_hub: WebHub) -> Iterator[Any]:
    context = browser.new_context(base_url=web_hub.url, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def _unlabelled_fields(page: Any) -> list[str]:
    """Visible form fields without a label (an accessibility failure)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                .filter(e => e.type !== 'hidden')
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                .map(e => e.outerHTML)"""
        )
    )


def test_sign_in_with_the_keyboard(page: Any, web_hub: WebHub, screenshots: Path) -> None:
    page.goto("/ui/tasks")
    assert "/ui/sign-in" in page.url
    assert page.get_by_role("heading", name="Sign in").is_visible()
    assert _unlabelled_fields(page) == []
    page.screenshot(path=str(screenshots / "sign-in.png"), full_page=True)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(10):
        if page.evaluate("document.activeElement.id") == "token":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type("not-a-token")
    page.keyboard.press("Enter")
    page.get_by_role("alert").wait_for()
    assert "unknown or revoked" in page.get_by_role("alert").inner_text()
    page.get_by_label("API token").fill(web_hub.tokens["alice"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/tasks")
    assert page.get_by_text("Signed in as alice").is_visible()


def test_task_list_shows_only_own_tasks(page: Any, web_hub: WebHub, screenshots: Path) -> None:
    mine = web_hub.submit("alice", {"name": "alice-quick", "executors": [_sh("echo hi")]})
    theirs = web_hub.submit("bob", {"name": "bob-secret", "executors": [_sh("echo hi")]})
    page.goto("/ui/tasks")
    assert page.get_by_role("link", name="alice-quick").is_visible()
    assert page.get_by_text("bob-secret").count() == 0
    assert theirs not in page.content()
    assert _unlabelled_fields(page) == []
    page.screenshot(path=str(screenshots / "tasks.png"), full_page=True)
    # Filters: a name prefix that matches nothing, then one that matches.
    page.get_by_label("Name starts with").fill("nothing-")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/ui/tasks?*name=nothing-")
    assert page.get_by_text("No tasks match these filters").is_visible()
    page.goto("/ui/tasks?name=alice-")
    assert page.get_by_role("link", name="alice-quick").is_visible()
    # Another user's task page is a 404, as if it did not exist.
    response = page.goto(f"/ui/tasks/{theirs}")
    assert response is not None and response.status == 404
    assert mine


def test_follow_a_task_live_to_its_end(page: Any, web_hub: WebHub, screenshots: Path) -> None:
    # One line per second for 3 s: one executor per line, so that each line is recorded as
    # its executor ends, while the task still runs.
    task_id = web_hub.submit(
        "alice",
        {
            "name": "live-logs",
            "executors": [_sh(f"echo line {i}; sleep 1") for i in (1, 2, 3)],
        },
    )
    page.goto("/ui/tasks")
    page.get_by_role("link", name="live-logs").click()
    page.wait_for_url(f"**/ui/tasks/{task_id}")
    first = page.locator("#log-0-stdout")
    first.filter(has_text="line 1").wait_for()
    # The line arrived through the stream, before the task ended.
    assert not web_hub.hub.store.owner_and_state(task_id)[1].terminal
    page.screenshot(path=str(screenshots / "task-live.png"), full_page=True)
    page.locator("#task-state", has_text="COMPLETE").wait_for()
    assert "line 3" in page.locator("#log-2-stdout").inner_text()
    timeline = page.locator(".timeline").inner_text()
    for phase in ("queued", "initializing", "running", "ended: COMPLETE"):
        assert phase in timeline
    assert page.get_by_role("button", name="Cancel task").count() == 0
    page.screenshot(path=str(screenshots / "task-complete.png"), full_page=True)


def test_cancel_a_running_task(page: Any, web_hub: WebHub, screenshots: Path) -> None:
    task_id = web_hub.submit("alice", {"name": "long-one", "executors": [_sh("sleep 120")]})
    page.goto(f"/ui/tasks/{task_id}")
    page.locator("#task-state", has_text="RUNNING").wait_for()
    page.get_by_role("button", name="Cancel task").click()
    page.locator("#task-state", has_text="CANCELED").wait_for()
    assert web_hub.hub.store.owner_and_state(task_id)[1] is State.CANCELED
    page.screenshot(path=str(screenshots / "task-canceled.png"), full_page=True)


def test_cancel_without_csrf_token_is_refused(page: Any, web_hub: WebHub) -> None:
    task_id = web_hub.submit("alice", {"name": "not-canceled", "executors": [_sh("sleep 30")]})
    # The browser's cookies but a forged form (no token): 403, and the task goes on.
    response = page.request.post(f"/ui/tasks/{task_id}/cancel", form={"csrf_token": "forged"})
    assert response.status == 403
    assert not web_hub.hub.store.owner_and_state(task_id)[1].terminal
    web_hub.hub.tasks.cancel(task_id, Identity(user="alice"))


def test_sites_page_lists_an_enrolled_site(page: Any, web_hub: WebHub, screenshots: Path) -> None:
    web_hub.hub.sites.enrol("lab-a", "The lab's imaging cohort")
    page.goto("/ui/tasks")
    page.get_by_role("link", name="Sites").click()
    page.wait_for_url("**/ui/sites")
    assert page.get_by_role("heading", name="lab-a").is_visible()
    assert page.get_by_text("offline").is_visible()
    page.screenshot(path=str(screenshots / "sites.png"), full_page=True)


def test_sign_out(page: Any) -> None:
    page.goto("/ui/tasks")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/sign-in")
    page.goto("/ui/tasks")
    assert "/ui/sign-in" in page.url
