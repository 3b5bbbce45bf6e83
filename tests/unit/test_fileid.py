from __future__ import annotations

import os

from netwarden.sensor.fileid import same_file

DISK = os.makedev(8, 1)
OVERLAY, LAYER = os.makedev(0, 24), os.makedev(0, 26)


def test_same_device_and_inode():
    assert same_file(DISK, 5, DISK, 5)
    assert not same_file(DISK, 5, DISK, 6)
    assert not same_file(DISK, 5, os.makedev(8, 2), 5)   # two real disks: different files


def test_anonymous_devices_compare_by_inode():
    # overlayfs: the kernel sees the overlay's superblock, stat() the layer's device.
    assert same_file(OVERLAY, 521625, LAYER, 521625)
    assert same_file(OVERLAY, 521625, DISK, 521625)
    assert not same_file(OVERLAY, 521625, LAYER, 521626)
