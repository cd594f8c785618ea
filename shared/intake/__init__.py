"""Pure CSV intake: decode, parse, validate and merge hardware-hash CSVs. No I/O beyond a byte stream."""

from .model import DeviceRow, FileRejected, Rejection, RowRef, serial_key
from .reader import OpenedFile, open_devices

__all__ = ["DeviceRow", "FileRejected", "OpenedFile", "Rejection", "RowRef", "open_devices", "serial_key"]
