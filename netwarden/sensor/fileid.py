"""When a (device, inode) from the kernel and one from stat() name the same file.

The kernel reports an executable's inode as its superblock knows it; stat() may report another
device for the very same file: overlayfs (every container image, and the kernel matrix's guest
root) shows the layer's device, btrfs the subvolume's. Both are anonymous devices (major 0).
So inode numbers must be equal, and devices too unless either side is an anonymous device.
"""

from __future__ import annotations

import os


def same_file(dev_a: int, ino_a: int, dev_b: int, ino_b: int) -> bool:
    if ino_a != ino_b:
        return False
    return dev_a == dev_b or os.major(dev_a) == 0 or os.major(dev_b) == 0
