"""JSON Schema helpers the spec-checking tests share."""

from __future__ import annotations

from typing import Any

__all__ = ["strict"]


def strict(node: Any) -> Any:
    """A copy where every object schema with ``properties`` allows nothing else."""
    if isinstance(node, dict):
        out = {k: strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node
