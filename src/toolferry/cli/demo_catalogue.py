"""The demo's catalogue part: publish a small tool from a recipe, build it with the local
engine, and make a task from its tool interface (run by catalogue name, pinned by digest)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from toolferry.cli.client import ClientError, TesClient

__all__ = ["DEMO_ENVIRONMENT", "demo_recipe", "demo_task_document", "publish_demo_environment"]

DEMO_ENVIRONMENT = "demo/genecount"
_INTERFACE = {
    "command": ["sh", "-c", "sort {genes} | uniq -c | sort -rn > {counts} && cat {counts}"],
    "inputs": [{"name": "genes", "path": "/data/genes.txt", "description": "one gene a line"}],
    "outputs": [{"name": "counts", "path": "/out/counts.txt"}],
}


def demo_recipe(base_image: str) -> str:
    """A Dockerfile whose labels carry the catalogue metadata (GEF's annotated images)."""
    labels = {
        "org.opencontainers.image.title": "Gene counter",
        "org.opencontainers.image.description": "Counts how often each gene is listed",
        "toolferry.community": "biology",
        "toolferry.purpose": "demo",
        "toolferry.software_packages": "busybox",
        "toolferry.user_interface": "cli",
        "toolferry.execution_type": "job",
        "toolferry.interface": json.dumps(_INTERFACE),
    }
    lines = " \\\n      ".join(f"{k}='{v}'" for k, v in labels.items())
    return f"FROM {base_image}\nLABEL {lines}\n"


def publish_demo_environment(client: TesClient, base_image: str, console: Console) -> str:
    """``name:version`` of the demo's image in the catalogue: the one a previous demo built,
    or a recipe published and built now."""
    try:
        latest = client.catalogue("GET", f"environments/{DEMO_ENVIRONMENT}")
    except ClientError as exc:
        if exc.status != 404:
            raise
        latest = None
    if latest is not None and latest.get("kind") == "oci-image" and latest["status"] != "deleted":
        ref = f"{latest['name']}:{latest['version']}"
        console.print(f"catalogue: reusing [bold]{escape(ref)}[/] ({escape(latest['digest'])})")
        return ref
    space = client.create_space()
    try:
        with tempfile.TemporaryDirectory(prefix="toolferry-demo-") as work:
            recipe = Path(work) / "Dockerfile"
            recipe.write_text(demo_recipe(base_image), encoding="utf-8")
            client.upload(space, "Dockerfile", recipe)
        published = client.catalogue(
            "POST",
            "environments:import",
            json={"url": f"hub://{space}/Dockerfile", "document": {"name": DEMO_ENVIRONMENT}},
            timeout=600,
        )
    finally:
        client.delete_space(space)
    console.print(
        f"catalogue: published the recipe [bold]{DEMO_ENVIRONMENT}:{published['version']}[/]"
    )
    built = client.catalogue(
        "POST",
        f"environments/{DEMO_ENVIRONMENT}/versions/{published['version']}:build",
        json={},
        timeout=600,
    )
    ref = f"{built['name']}:{built['version']}"
    console.print(
        f"catalogue: built it into [bold]{escape(ref)}[/] ({escape(built['digest'])}), "
        "metadata read from its labels"
    )
    return ref


def demo_task_document(
    client: TesClient, ref: str, genes: Path, counts: Path, tags: dict[str, str]
) -> dict[str, Any]:
    """The TES task the catalogue makes from the environment's tool interface."""
    name, _, version = ref.rpartition(":")
    answer = client.catalogue(
        "POST",
        f"environments/{name}/versions/{version}:run",
        json={
            "bindings": {"genes": genes.as_uri(), "counts": counts.as_uri()},
            "name": "demo-catalogue",
            "dry_run": True,
        },
    )
    document: dict[str, Any] = answer["task"]
    document["tags"] = tags
    document["description"] = f"A task made from the tool interface of {ref}"
    return document
