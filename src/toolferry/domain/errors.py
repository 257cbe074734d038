"""Errors raised by domain rules.

ToolferryError
 ├── InvalidTask          a task document breaks a rule (names the field)
 ├── InvalidTransition    a state change the state machine forbids
 ├── NotFound             no such object (or not visible to the caller)
 ├── Conflict             the object already exists (e.g. a published environment version)
 ├── Forbidden            the caller may not do this
 ├── Unavailable          a tool or service this host needs is missing or too slow (503)
 └── UpstreamError        a service toolferry talks to (a registry) failed (502)
"""

from __future__ import annotations


class ToolferryError(Exception):
    """Base of every error toolferry raises on purpose."""


class InvalidTask(ToolferryError):
    """A task document breaks a rule; ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class InvalidTransition(ToolferryError):
    """The state machine does not allow this change of state."""


class NotFound(ToolferryError):
    """The object does not exist, or the caller may not see it."""


class Conflict(ToolferryError):
    """The object already exists and cannot be made again (a published version is final)."""


class Forbidden(ToolferryError):
    """The caller is known but may not do this."""


class Unavailable(ToolferryError):
    """Something this host needs (a program, a service) is missing or did not finish in time;
    the message says how to fix it. Not the caller's fault."""


class UpstreamError(ToolferryError):
    """A service toolferry calls on the caller's behalf (an OCI registry) failed or answered
    what its protocol does not allow; the message names it."""
