"""The local container engine, as the catalogue uses it: build recipes, save and load images.

The Docker Engine API over the docker SDK (the engine DOCKER_HOST names, or the default
socket). Builds never get a network: a recipe builds from what the engine has, as every task
runs, so a build is repeatable and cannot fetch what nobody reviewed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from toolferry.domain.errors import InvalidTask, Unavailable

__all__ = ["Engine"]

_BUILD_TAIL = 20  # lines of build output a failed build shows


class Engine:
    def __init__(self, docker_host: str | None = None, *, timeout: int = 600) -> None:
        self._docker_host = docker_host
        self._timeout = timeout

    @contextmanager
    def _api(self, doing: str) -> Iterator[Any]:
        import docker
        import docker.errors
        import requests

        kwargs: dict[str, Any] = docker.utils.kwargs_from_env()
        if self._docker_host:
            kwargs["base_url"] = self._docker_host
        try:
            client = docker.APIClient(timeout=self._timeout, version="auto", **kwargs)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise Unavailable(
                f"{doing} needs a Docker Engine, and none answers "
                f"({kwargs.get('base_url') or 'the default socket'}): {exc}; start dockerd "
                "or set DOCKER_HOST"
            ) from exc
        try:
            yield client
        except docker.errors.ImageNotFound as exc:
            raise InvalidTask("image", f"{doing}: {exc.explanation or exc}") from exc
        except docker.errors.APIError as exc:
            raise Unavailable(f"{doing}: the Docker Engine said {exc.explanation or exc}") from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise Unavailable(f"{doing}: {exc}") from exc
        finally:
            client.close()

    def save(self, image: str, dest: Path) -> None:
        """``docker save image`` to ``dest`` (a Docker archive), streamed."""
        with self._api(f"saving image {image}") as api:
            partial = dest.with_name(dest.name + ".partial")
            with partial.open("wb") as out:
                for chunk in api.get_image(image):
                    out.write(chunk)
            partial.replace(dest)

    def load(self, archive: Path) -> None:
        """``docker load`` a Docker archive."""
        with self._api(f"loading {archive.name}") as api, archive.open("rb") as data:
            for event in api.load_image(data, quiet=True):
                if isinstance(event, dict) and event.get("error"):
                    raise Unavailable(f"loading {archive.name}: {event['error']}")

    def has(self, image: str) -> bool:
        import docker.errors

        with self._api(f"looking for image {image}") as api:
            try:
                api.inspect_image(image)
            except docker.errors.ImageNotFound:
                return False
            return True

    def image_id(self, image: str) -> str:
        """The engine's id of ``image`` (``sha256:`` of its config)."""
        with self._api(f"inspecting image {image}") as api:
            return str(api.inspect_image(image)["Id"])

    def build(self, context: Path, *, tag: str, dockerfile: str = "Dockerfile") -> str:
        """Build the recipe in ``context`` (a tar, streamed) with no network for its RUN
        steps; the image's id. A failed build is the recipe's fault: InvalidTask with the end
        of the build's output (the engine may still fetch a missing FROM image)."""
        import docker.errors

        lines: list[str] = []
        with self._api(f"building {tag}") as api, context.open("rb") as stream:
            try:
                for event in api.build(
                    fileobj=stream,
                    custom_context=True,
                    dockerfile=dockerfile,
                    tag=tag,
                    rm=True,
                    forcerm=True,
                    network_mode="none",
                    decode=True,
                ):
                    if not isinstance(event, dict):
                        continue
                    if event.get("stream"):
                        lines.extend(event["stream"].rstrip("\n").splitlines())
                    if event.get("error"):
                        tail = "\n".join([*lines[-_BUILD_TAIL:], str(event["error"]).strip()])
                        raise InvalidTask("recipe", f"the build failed:\n{tail}")
            except docker.errors.APIError as exc:  # e.g. a Dockerfile that does not parse
                raise InvalidTask("recipe", f"the build failed: {exc.explanation or exc}") from exc
            return str(api.inspect_image(tag)["Id"])

    def remove(self, image: str) -> None:
        """Untag ``image`` (layers other images share stay)."""
        import docker.errors

        with self._api(f"removing {image}") as api, suppress(docker.errors.ImageNotFound):
            api.remove_image(image, noprune=False)
