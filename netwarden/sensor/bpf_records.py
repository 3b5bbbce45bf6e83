"""The one Python mirror of ``bpf/events.h``.

Field names, types and order match the C structs; tests/contract/test_btf_layout.py checks them
against the BTF of the built objects, so a change on one side without the other fails CI.
"""

from __future__ import annotations

import ctypes

ADDR_LEN = 16
COMM_LEN = 16
PATH_LEN = 256
ARGS_LEN = 256

FLOW_HAS_IDENTITY = 1

PROC_EXEC = 1
PROC_FORK = 2
PROC_EXIT = 3

HEALTH_FLOW_MAP_FULL = 0
HEALTH_BYTES_UNATTRIBUTED = 1
HEALTH_PROC_EVENTS_LOST = 2
HEALTH_SOCK_STORAGE_FAIL = 3
HEALTH_DNS_EVENTS_LOST = 4
HEALTH_DNS_UNREAD = 5
HEALTH_FLOW_INSERT_FAILED = 6
HEALTH_SCAN_PROBES_LOST = 7
HEALTH_CARRY_FULL = 8
HEALTH_COUNTERS = 9
DNS_MAX = 1536

#: Names under which each kernel health counter is written to the store.
HEALTH_COUNTER_NAMES = {
    HEALTH_FLOW_MAP_FULL: "flow_map_full",
    HEALTH_BYTES_UNATTRIBUTED: "bytes_unattributed",
    HEALTH_PROC_EVENTS_LOST: "proc_events_lost",
    HEALTH_SOCK_STORAGE_FAIL: "sock_storage_fail",
    HEALTH_DNS_EVENTS_LOST: "dns_events_lost",
    HEALTH_DNS_UNREAD: "dns_answers_unread",
    HEALTH_FLOW_INSERT_FAILED: "flow_insert_failed",
    HEALTH_SCAN_PROBES_LOST: "scan_probes_lost",
    HEALTH_CARRY_FULL: "carry_full",
}

#: scan_probe.kind (NW_PROBE_* in events.h)
PROBE_SYN = 1
PROBE_CONNECT_SYN = 2
PROBE_FIN = 3
PROBE_NULL = 4
PROBE_XMAS = 5
PROBE_OTHER_TCP = 6
PROBE_UDP = 7
PROBE_REQUEST = 8
PROBE_ESTABLISHED = 9


class FlowKey(ctypes.Structure):
    _fields_ = [
        ("sock_cookie", ctypes.c_uint64),
        ("tgid", ctypes.c_uint32),
        ("remote_port", ctypes.c_uint16),
        ("exec_id", ctypes.c_uint16),
        ("remote_addr", ctypes.c_uint8 * ADDR_LEN),
    ]


class FlowValue(ctypes.Structure):
    _fields_ = [
        ("sent_bytes", ctypes.c_uint64),
        ("recv_bytes", ctypes.c_uint64),
        ("exe_ino", ctypes.c_uint64),
        ("cgroup_id", ctypes.c_uint64),
        ("exe_dev", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("netns", ctypes.c_uint32),
        ("family", ctypes.c_uint16),
        ("protocol", ctypes.c_uint16),
        ("local_port", ctypes.c_uint16),
        ("remote_port", ctypes.c_uint16),
        ("sock_type", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("local_addr", ctypes.c_uint8 * ADDR_LEN),
        ("remote_addr", ctypes.c_uint8 * ADDR_LEN),
    ]


class DnsEvent(ctypes.Structure):
    _fields_ = [
        ("sock_cookie", ctypes.c_uint64),
        ("length", ctypes.c_uint16),
        ("transport", ctypes.c_uint8),
        ("truncated", ctypes.c_uint8),
        ("payload", ctypes.c_uint8 * DNS_MAX),
    ]


class Control(ctypes.Structure):
    """struct nw_control: the one entry of the `control` array map."""

    _fields_ = [
        ("active_table", ctypes.c_uint32),
        ("tcp_read_hooked", ctypes.c_uint32),
        ("socket_counters", ctypes.c_uint32),
        ("drain_netns", ctypes.c_uint32),
        ("datagram_hook", ctypes.c_uint32),
        ("socket_slots", ctypes.c_uint32),
        ("carry_batch", ctypes.c_uint64),
        ("move_seq", ctypes.c_uint64),
    ]


#: NW_SOCK_SLOTS: entries of the `sock_slots` array.
SOCK_SLOTS = 16384


class SockSlot(ctypes.Structure):
    """struct sock_slot: one socket's helper-free fast path (read by tests only)."""

    _fields_ = [
        ("cookie", ctypes.c_uint64),
        ("thread", ctypes.c_uint64),
        ("generation", ctypes.c_uint32),
        ("dport", ctypes.c_uint16),
        ("tcp", ctypes.c_uint8),
        ("unused", ctypes.c_uint8),
        ("sent", ctypes.c_uint64 * 2),
        ("recv", ctypes.c_uint64 * 2),
        ("pad", ctypes.c_uint64),
    ]


class DatagramNotice(ctypes.Structure):
    """struct datagram_notice: a raw or ping socket appeared while its hook was detached."""

    _fields_ = [
        ("tgid", ctypes.c_uint32),
        ("family", ctypes.c_uint16),
        ("sock_type", ctypes.c_uint8),
        ("protocol", ctypes.c_uint8),
    ]


class FlowRecord(ctypes.Structure):
    """struct flow_record: what the socket-drain iterator writes, one per socket and drain."""

    _fields_ = [
        ("key", FlowKey),
        ("value", FlowValue),
    ]


class ProcEvent(ctypes.Structure):
    _fields_ = [
        ("timestamp_ns", ctypes.c_uint64),
        ("exe_ino", ctypes.c_uint64),
        ("start_time_ns", ctypes.c_uint64),
        ("kind", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("exe_dev", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("args_len", ctypes.c_uint32),
        ("comm", ctypes.c_char * COMM_LEN),
        ("filename", ctypes.c_char * PATH_LEN),
        ("args", ctypes.c_char * ARGS_LEN),
    ]


class ScanProbe(ctypes.Structure):
    """struct scan_probe: one probe of a local port (bpf/scan.bpf.c)."""

    _fields_ = [
        ("timestamp_ns", ctypes.c_uint64),
        ("family", ctypes.c_uint16),
        ("local_port", ctypes.c_uint16),
        ("kind", ctypes.c_uint8),
        ("protocol", ctypes.c_uint8),
        ("remote_addr", ctypes.c_uint8 * ADDR_LEN),
        ("local_addr", ctypes.c_uint8 * ADDR_LEN),
    ]


class CarryKey(ctypes.Structure):
    """struct carry_key: a flow in one write window (batch) of the `carry` map."""

    _fields_ = [
        ("key", FlowKey),
        ("batch", ctypes.c_uint64),
    ]


class CarryValue(ctypes.Structure):
    """struct carry_value: drained, not yet committed; moved_seq makes a move idempotent."""

    _fields_ = [
        ("value", FlowValue),
        ("moved_seq", ctypes.c_uint64),
    ]


#: Every mirrored struct, by its C name (what the BTF contract test walks).
MIRRORED_STRUCTS: dict[str, type[ctypes.Structure]] = {
    "flow_key": FlowKey,
    "flow_value": FlowValue,
    "proc_event": ProcEvent,
    "nw_control": Control,
    "flow_record": FlowRecord,
    "dns_event": DnsEvent,
    "datagram_notice": DatagramNotice,
    "sock_slot": SockSlot,
    "scan_probe": ScanProbe,
    "carry_key": CarryKey,
    "carry_value": CarryValue,
}
