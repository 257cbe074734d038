"""The qcow2 header, read in pure Python so that unsafe images are refused before qemu opens them.

``qemu-img info`` does not follow a backing file, but it does open a qcow2 image's external
data file, a file named by the image itself. An uploaded image must therefore not reach qemu
while it names any other file. The header layout (all big-endian) is from qemu's
``docs/interop/qcow2.txt``:

======  ====  ==========================================================
offset  size  field
======  ====  ==========================================================
0       4     magic ``QFI\\xfb``
4       4     version (2 or 3; 1 is the older "qcow" format)
8       8     backing_file_offset (0: no backing file)
16      4     backing_file_size
20      4     cluster_bits
24      8     size (virtual size in bytes)
32      4     crypt_method (0: none, 1: AES, 2: LUKS)
...           L1/refcount/snapshot tables (not needed here)
72      8     incompatible_features (version 3 only; bit 0 dirty, 1 corrupt,
              2 external data file, 3 compression type, 4 extended L2)
======  ====  ==========================================================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from toolferry.domain.errors import InvalidTask

__all__ = ["Qcow2Header", "check_qcow2_header", "read_qcow2_header"]

_V2 = struct.Struct(">4sIQIIQI")  # magic .. crypt_method: the first 36 bytes
_INCOMPATIBLE_AT = 72
_DIRTY, _CORRUPT, _DATA_FILE = 1 << 0, 1 << 1, 1 << 2


@dataclass(frozen=True, kw_only=True)
class Qcow2Header:
    version: int
    backing_file_offset: int
    cluster_bits: int
    virtual_size: int
    crypt_method: int
    incompatible_features: int

    @property
    def has_backing_file(self) -> bool:
        return self.backing_file_offset != 0

    @property
    def has_external_data_file(self) -> bool:
        return bool(self.incompatible_features & _DATA_FILE)

    @property
    def dirty(self) -> bool:
        return bool(self.incompatible_features & _DIRTY)

    @property
    def corrupt(self) -> bool:
        return bool(self.incompatible_features & _CORRUPT)


def read_qcow2_header(head: bytes, *, name: str = "the file") -> Qcow2Header:
    """Parse the header at the start of ``head``; raises :class:`InvalidTask` if it is not one."""
    if len(head) < _V2.size or not head.startswith(b"QFI\xfb"):
        raise InvalidTask("file", f"{name} does not start with a qcow2 header")
    _, version, backing, _, cluster_bits, size, crypt = _V2.unpack_from(head)
    incompatible = 0
    if version >= 3:
        if len(head) < _INCOMPATIBLE_AT + 8:
            raise InvalidTask("file", f"{name} has a truncated qcow2 version 3 header")
        (incompatible,) = struct.unpack_from(">Q", head, _INCOMPATIBLE_AT)
    return Qcow2Header(
        version=version,
        backing_file_offset=backing,
        cluster_bits=cluster_bits,
        virtual_size=size,
        crypt_method=crypt,
        incompatible_features=incompatible,
    )


def check_qcow2_header(head: bytes, *, name: str = "the file") -> Qcow2Header:
    """The header of ``head``, or :class:`InvalidTask` if it may not be opened."""
    header = read_qcow2_header(head, name=name)
    if header.version not in (2, 3):
        raise InvalidTask(
            "file",
            f"{name} is a qcow version {header.version} image; only qcow2 (versions 2 and 3) "
            "is accepted",
        )
    if header.has_backing_file:
        raise InvalidTask(
            "file",
            f"{name} has a backing file: an uploaded image must be self-contained (a backing "
            "file name could make the host read its own files); flatten it first with "
            "qemu-img convert",
        )
    if header.has_external_data_file:
        raise InvalidTask(
            "file",
            f"{name} keeps its data in an external data file: an uploaded image must be "
            "self-contained (the data file name could point at a host file)",
        )
    if header.crypt_method != 0:
        raise InvalidTask(
            "file", f"{name} is encrypted; upload an unencrypted image (no key is kept here)"
        )
    return header
