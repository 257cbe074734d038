"""Queue, placement and dispatch of tasks; the use cases behind the API (submit, cancel, read)."""
