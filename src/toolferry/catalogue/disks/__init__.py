"""VM disk images and Apptainer SIF files: detect, inspect, convert and unpack them.

``detect`` tells formats apart by their bytes; ``info`` inspects a disk with ``qemu-img``
and refuses disks that name other files; ``convert`` converts between qcow2, raw and vmdk;
``ovf``/``ova``/``manifest`` read OVA packages; ``sif`` reads SIF files in pure Python.
"""

from toolferry.catalogue.disks.convert import TARGET_FORMATS, convert_disk
from toolferry.catalogue.disks.detect import Detection, FileFormat, detect, detect_file
from toolferry.catalogue.disks.info import DiskInfo, inspect_disk
from toolferry.catalogue.disks.ova import OvaPackage, convert_ova, extract_disk, read_ova
from toolferry.catalogue.disks.ovf import OvfDescriptor, OvfDisk, parse_ovf
from toolferry.catalogue.disks.qemu import DiskToolError
from toolferry.catalogue.disks.sif import SifImage, read_sif

__all__ = [
    "TARGET_FORMATS",
    "Detection",
    "DiskInfo",
    "DiskToolError",
    "FileFormat",
    "OvaPackage",
    "OvfDescriptor",
    "OvfDisk",
    "SifImage",
    "convert_disk",
    "convert_ova",
    "detect",
    "detect_file",
    "extract_disk",
    "inspect_disk",
    "parse_ovf",
    "read_ova",
    "read_sif",
]
