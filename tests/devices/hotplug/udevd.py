"""A stand-in for udevd's broadcasts, so the pyudev adapter is tested with no udev daemon.

udevd tells listeners of a processed event with a netlink message to the
``udev`` multicast group (2) of NETLINK_KOBJECT_UEVENT: a 40-byte header
(``libudev``, magic 0xfeedcafe, offsets, and the MurmurHash2 of the subsystem
that the listeners' socket filter checks) followed by ``KEY=value\\0`` pairs.
Sending to the group needs root. Tests must not use it where a real udevd runs:
its listeners would believe the device exists.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Mapping

NETLINK_KOBJECT_UEVENT = 15
UDEV_GROUP = 2
_HEADER = struct.Struct("=8sIIIIIIII")


def live_udev_here() -> bool:
    return Path("/run/udev/control").exists()


def _murmur2(data: bytes) -> int:
    m, h = 0x5BD1E995, len(data) & 0xFFFFFFFF
    whole = len(data) // 4 * 4
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[whole:]
    if tail:
        for shift, byte in reversed(list(enumerate(tail))):
            h ^= byte << (8 * shift)
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def broadcast(action: str, properties: Mapping[str, str], seqnum: int = 1) -> None:
    """Tell every udev listener on this machine that ``action`` happened to the device."""
    fields = {"ACTION": action, **properties, "SEQNUM": str(seqnum)}
    payload = b"".join(f"{key}={value}".encode() + b"\0" for key, value in fields.items())
    header = _HEADER.pack(
        b"libudev\0", socket.htonl(0xFEEDCAFE), _HEADER.size, _HEADER.size, len(payload),
        socket.htonl(_murmur2(fields["SUBSYSTEM"].encode())), 0, 0, 0,
    )
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT) as sock:
        sock.bind((0, 0))
        sock.sendto(header + payload, (0, UDEV_GROUP))
