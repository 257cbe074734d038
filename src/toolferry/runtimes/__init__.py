"""How one executor's image runs: docker, none (host process); one module per runtime."""
