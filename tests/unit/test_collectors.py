from __future__ import annotations

import os
import socket

from netwarden.sensor import bpf_records as rec
from netwarden.sensor.collectors import decode_flow, kernel_dev_to_st_dev


def test_kernel_dev_conversion():
    assert kernel_dev_to_st_dev((254 << 20) | 1) == os.makedev(254, 1)


def test_decode_merges_cpus_and_takes_identity_from_the_marked_slot():
    key = rec.FlowKey(sock_cookie=7, tgid=42)      # a connected socket: no peer in the key
    marked = rec.FlowValue(sent_bytes=10, recv_bytes=1, exe_ino=99, exe_dev=(8 << 20) | 1,
                           uid=1000, family=socket.AF_INET, protocol=6, local_port=5555,
                           remote_port=443, sock_type=1, flags=rec.FLOW_HAS_IDENTITY)
    marked.local_addr[:4] = [10, 0, 0, 2]
    marked.remote_addr[:4] = [1, 1, 1, 1]
    other = rec.FlowValue(sent_bytes=5, recv_bytes=2)
    flow = decode_flow(key, [other, marked])
    assert (flow.sent_bytes, flow.recv_bytes) == (15, 3)
    assert (flow.exe_ino, flow.exe_dev) == (99, os.makedev(8, 1))
    assert (flow.local_addr, flow.local_port, flow.remote_addr, flow.remote_port) == \
        ("10.0.0.2", 5555, "1.1.1.1", 443)
