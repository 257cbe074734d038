"""The ImageStore contract on the layout store and on RegistryStore over an in-memory registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.catalogue.oci.fake_registry import BASE, FakeRegistry
from tests.unit.catalogue.oci.store_contract import StoreContract

from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.catalogue.oci.registry import RegistryStore
from toolferry.catalogue.oci.store import ImageStore


class TestLayoutStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ImageStore:
        return LayoutStore(tmp_path / "layouts")


class TestRegistryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[ImageStore]:
        fake = FakeRegistry(auth="bearer", page_size=2)
        with RegistryStore(
            BASE,
            username="alice",
            password="secret",
            chunk_size=1 << 20,
            transport=fake.transport(),
        ) as store:
            yield store
