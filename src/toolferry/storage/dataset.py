"""dataset:// URLs on the agent: ``dataset://SITE/DATASET/path`` to the local file it names.

The URL's grammar lives with the datasets in :mod:`toolferry.domain.site_policy` (the hub
checks it too); here it is resolved on the data site. A path is confined to its own dataset's
root: ``..`` never parses, and the real path (symlinks followed) must stay below the real root,
so a link pointing into another dataset or elsewhere on the host is refused.

Errors name the URL, never the host path: where a site keeps its data does not leave it.
:class:`DatasetStorage` serves the scheme read-only through the storage router, so a
``streamable`` input is mounted in place (:class:`~toolferry.storage.base.LocalStorage`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from toolferry.domain.site_policy import SCHEME, BadDatasetUrl, Dataset, DatasetUrl
from toolferry.storage.base import Credential, ObjectInfo, Operation, StorageError, Uploaded
from toolferry.storage.file import FileStorage, join_url

__all__ = [
    "SCHEME",
    "BadDatasetUrl",
    "DatasetStorage",
    "DatasetUrl",
    "format_url",
    "parse",
    "resolve",
    "stat",
]


# What is left of a host path in a message once the dataset's root is cut off: a symlink target.
_HOST_PATH = re.compile(r"(?<![\w:/])/[^\s,;]*")


def parse(url: str) -> DatasetUrl:
    """``url``'s site, dataset and relative path; :class:`BadDatasetUrl` says what is wrong."""
    return DatasetUrl.parse(url)


def format_url(site: str, dataset: str, path: str = "") -> str:
    """``dataset://site/dataset/path``, the path percent-encoded."""
    return str(DatasetUrl(site, dataset, path))


def _locate(
    url: str | DatasetUrl, datasets: Mapping[str, Dataset], site: str | None
) -> tuple[DatasetUrl, Path, Path]:
    """The parsed URL, the dataset's real root, and the real path the URL names (which may
    not exist); :class:`StorageError` when the URL is malformed or leaves its dataset."""
    try:
        parsed = url if isinstance(url, DatasetUrl) else DatasetUrl.parse(url)
    except BadDatasetUrl as exc:
        raise StorageError(str(url), str(exc).removeprefix(f"{url}: ")) from None
    shown = str(parsed)
    if site is not None and parsed.site != site:
        raise StorageError(shown, f"names site {parsed.site}; this is site {site}")
    dataset = datasets.get(parsed.dataset)
    if dataset is None:
        raise StorageError(shown, f"no dataset {parsed.dataset!r} at this site")
    root = Path(os.path.realpath(dataset.path))
    if not root.is_dir():
        raise StorageError(
            shown, f"dataset {dataset.name} is not available at this site now (no directory)"
        )
    real = Path(os.path.realpath(root.joinpath(*parsed.parts)))
    if not real.is_relative_to(root):
        raise StorageError(shown, f"leads outside dataset {dataset.name} (through a symlink)")
    return parsed, root, real


def resolve(
    url: str | DatasetUrl, datasets: Mapping[str, Dataset], *, site: str | None = None
) -> Path:
    """The real local path ``url`` names, inside its dataset and existing; with ``site``,
    the URL must name that site. Raises :class:`StorageError` naming the URL."""
    parsed, _, real = _locate(url, datasets, site)
    if not real.exists():
        raise StorageError(str(parsed), "no such file or directory in the dataset")
    return real


def stat(
    url: str | DatasetUrl, datasets: Mapping[str, Dataset], *, site: str | None = None
) -> ObjectInfo:
    """Size and validators of what ``url`` names (a directory's size is 0, as for file://)."""
    parsed, root, real = _locate(url, datasets, site)
    with _under(str(parsed), root):
        info = FileStorage([root]).stat(str(real))
    return ObjectInfo(
        url=str(parsed), size=info.size, is_dir=info.is_dir, etag=info.etag, modified=info.modified
    )


@contextlib.contextmanager
def _under(url: str, root: Path) -> Iterator[None]:
    """Errors of a FileStorage confined to ``root`` come back naming ``url``, not host paths."""
    try:
        yield
    except StorageError as exc:
        cause = exc.cause.replace(str(root) + "/", "").replace(str(root), "the dataset")
        raise StorageError(url, _HOST_PATH.sub("a path outside the dataset", cause)) from exc


class DatasetStorage:
    """``dataset://`` URLs of this site's datasets, read-only."""

    schemes: tuple[str, ...] = (SCHEME,)
    operations: frozenset[Operation] = frozenset(
        {Operation.STAT, Operation.GET, Operation.GET_DIRECTORY, Operation.LIST}
    )

    def __init__(self, site: str, datasets: Mapping[str, Dataset]) -> None:
        self.site = site
        self.datasets = dict(datasets)

    def supports(self, url: str, *, write: bool) -> str | None:
        if write:
            return f"{url}: datasets are read-only"
        try:
            self._locate(url)
        except StorageError as exc:
            return str(exc)
        return None

    def local_path(self, url: str) -> Path:
        return resolve(url, self.datasets, site=self.site)

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
        return stat(url, self.datasets, site=self.site)

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        parsed, root, real = self._locate(url)
        with _under(str(parsed), root):
            return FileStorage([root]).get(str(real), dest, directory=directory)

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        raise StorageError(url, "datasets are read-only")

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        parsed, root, real = self._locate(url)
        with _under(str(parsed), root):
            found = FileStorage([root]).list(str(real))
        result = []
        for info in found:
            rel = Path(info.url).relative_to(real)  # FileStorage names them by host path
            shown = str(parsed) if rel == Path() else join_url(str(parsed), PurePosixPath(rel))
            result.append(
                ObjectInfo(
                    url=shown,
                    size=info.size,
                    is_dir=info.is_dir,
                    etag=info.etag,
                    modified=info.modified,
                )
            )
        return result

    def _locate(self, url: str) -> tuple[DatasetUrl, Path, Path]:
        return _locate(url, self.datasets, self.site)
