"""Live ``active_deployments``: how many tasks not yet ended run each catalogue entry."""

from __future__ import annotations

from collections import Counter

from toolferry.domain.states import TERMINAL, State
from toolferry.store.base import TaskQuery, TaskStore

__all__ = ["count_deployments"]

_LIVE = tuple(state for state in State if state not in TERMINAL and state is not State.UNKNOWN)


def count_deployments(store: TaskStore) -> Counter[str]:
    """Entry ref ("name:version") → tasks that name it and have not ended, read from the
    store each time (a task counts once however many executors run the entry)."""
    counts: Counter[str] = Counter()
    for state in _LIVE:
        token: str | None = None
        while True:
            page = store.query(TaskQuery(state=state, page_size=1000, page_token=token))
            for task in page.tasks:
                counts.update({use.entry for use in task.spec.environments})
            token = page.next_page_token
            if token is None:
                break
    return counts
