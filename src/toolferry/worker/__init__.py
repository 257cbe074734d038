"""One task attempt: stage inputs → run executors → stage outputs, with one finalizer that always reports."""
