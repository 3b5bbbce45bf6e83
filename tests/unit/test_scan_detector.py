"""The port-scan detector: threshold, window, allow-list, extension and summaries of a scan."""

from __future__ import annotations

import ctypes
import socket

from netwarden.config import ScanConfig
from netwarden.model import EventKind
from netwarden.notify.notices import render_event
from netwarden.sensor import bpf_records as rec
from netwarden.sensor.scan import PortProbe, ScanDetector, decode_probe, drop_sites

SOURCE = "198.51.100.7"


def probe(t: float, port: int, kind: str = "syn", source: str = SOURCE,
          protocol: str = "tcp") -> PortProbe:
    return PortProbe(t, source, "192.0.2.1", protocol, port, kind)


def detector(**settings: object) -> ScanDetector:
    return ScanDetector(ScanConfig(**{"ports": 10, "window_s": 5.0, **settings}))  # type: ignore[arg-type]


def test_more_than_n_ports_within_t_is_one_event_when_the_scan_ends():
    scans = detector()
    for i in range(30):
        scans.observe(probe(100 + i * 0.1, 1000 + i))
    assert scans.tick(104.0) == []              # still going (last probe at 102.9)
    (event,) = scans.tick(108.0)
    fields = event.field_dict()
    assert event.kind is EventKind.PORT_SCAN
    assert (fields["source"], fields["ports"], fields["probe"], fields["state"]) == \
        (SOURCE, 30, "syn", "ended")
    assert fields["sample"] == list(range(1000, 1020))
    assert (fields["first"], fields["last"]) == (100.0, 102.9)
    assert scans.tick(200.0) == []               # reported once, then forgotten


def test_n_ports_or_fewer_is_no_scan():
    scans = detector()
    for i in range(10):
        scans.observe(probe(100 + i, 1000 + i))   # 10 ports is not *more* than 10
    assert scans.tick(200.0) == []


def test_ports_spread_over_more_than_the_window_are_no_scan():
    scans = detector()
    for i in range(30):
        scans.observe(probe(100 + i * 1.0, 1000 + i))   # 5 s window holds ~6 ports
    assert scans.tick(200.0) == []


def test_the_same_port_again_and_again_is_no_scan():
    scans = detector()
    for i in range(200):
        scans.observe(probe(100 + i * 0.01, 443, "connect"))
    assert scans.tick(200.0) == []


def test_an_allowed_source_is_never_counted():
    scans = detector(allow=("198.51.100.0/24",))
    for i in range(50):
        scans.observe(probe(100 + i * 0.01, 1000 + i))
    assert scans.tick(200.0) == []
    assert scans.allowed_probes == 50


def test_a_syn_whose_handshake_completed_is_a_connect():
    scans = detector()
    for i in range(20):
        scans.observe(probe(100, 1000 + i, "syn"))
        scans.observe(probe(100.001, 1000 + i, "connect"))
    (event,) = scans.tick(110.0)
    assert event.field_dict()["probe"] == "connect"
    assert event.field_dict()["ports"] == 20


def test_the_kind_is_what_most_ports_saw():
    scans = detector()
    for i in range(20):
        scans.observe(probe(100, 1000 + i, "fin"))
    scans.observe(probe(100, 2000, "other"))
    (event,) = scans.tick(110.0)
    assert event.field_dict()["probe"] == "fin"
    assert event.field_dict()["probes"] == {"fin": 20, "other": 1}


def test_tcp_and_udp_ports_count_apart():
    scans = detector()
    for i in range(8):
        scans.observe(probe(100, 1000 + i, "udp", protocol="udp"))
        scans.observe(probe(100, 1000 + i, "syn"))
    (event,) = scans.tick(110.0)
    assert event.field_dict()["ports"] == 16
    assert event.field_dict()["protocols"] == ["tcp", "udp"]


def test_a_long_scan_is_reported_once_then_summarised():
    scans = detector(report_after_s=60.0, summary_interval_s=600.0)
    events = []
    for second in range(0, 2000):
        for k in range(3):                 # 3 new ports a second: 15 in any 5 s window
            scans.observe(probe(second + k / 3, second * 3 + k + 1))
        events += scans.tick(second + 0.9)
    events += scans.tick(3000.0)
    states = [(e.field_dict()["state"], e.field_dict()["report"]) for e in events]
    # at 60 s, then every 600 s while it goes on (660, 1260, 1860), then the end
    assert states == [("ongoing", 1), ("ongoing", 2), ("ongoing", 3), ("ongoing", 4),
                      ("ended", 5)]
    assert events[-1].field_dict()["ports"] == 6000
    assert events[0].field_dict()["ports"] == 183        # as it stood at 60 s


def test_a_scan_going_on_at_stop_is_flushed():
    scans = detector()
    for i in range(20):
        scans.observe(probe(100 + i * 0.01, 1000 + i))
    assert [e.field_dict()["state"] for e in scans.flush()] == ["ongoing"]
    assert scans.tick(200.0) == []


def test_two_sources_are_two_scans():
    scans = detector()
    for i in range(20):
        scans.observe(probe(100, 1000 + i))
        scans.observe(probe(100, 1000 + i, source="2001:db8::9"))
    sources = sorted(e.field_dict()["source"] for e in scans.tick(110.0))
    assert sources == ["198.51.100.7", "2001:db8::9"]


def raw_probe(family: int, remote: bytes, local: bytes, kind: int, protocol: int = 6,
              port: int = 22) -> bytes:
    record = rec.ScanProbe(timestamp_ns=5_000_000_000, family=family, local_port=port,
                           kind=kind, protocol=protocol)
    ctypes.memmove(record.remote_addr, remote, len(remote))
    ctypes.memmove(record.local_addr, local, len(local))
    return bytes(record)


def test_decoding_the_kernel_record():
    v4 = raw_probe(socket.AF_INET, bytes([10, 1, 2, 3]), bytes([10, 1, 2, 1]), rec.PROBE_XMAS)
    assert decode_probe(v4, 1000.0) == PortProbe(1005.0, "10.1.2.3", "10.1.2.1", "tcp", 22,
                                                 "xmas")
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:10.1.2.3")
    v6 = raw_probe(socket.AF_INET6, mapped, socket.inet_pton(socket.AF_INET6, "fd00::1"),
                   rec.PROBE_UDP, protocol=17, port=53)
    assert decode_probe(v6, 0.0) == PortProbe(5.0, "10.1.2.3", "fd00::1", "udp", 53, "udp")
    multicast = raw_probe(socket.AF_INET, bytes([10, 1, 2, 3]), bytes([224, 0, 0, 251]),
                          rec.PROBE_UDP, protocol=17)
    assert decode_probe(multicast, 0.0) is None


def test_the_notice_says_who_how_many_and_how():
    notice = render_event(7, 100.0, "port_scan", {
        "source": SOURCE, "ports": 50, "probe": "syn", "duration_s": 1.5,
        "sample": [22, 23, 25], "state": "ended"})
    assert notice is not None
    assert notice.title == "Port scan of this host"
    assert notice.body == f"{SOURCE} probed 50 ports (half-open SYN) in 1.5 s\nports 22, 23, 25"
    assert notice.key == f"port_scan:{SOURCE}"


def test_drop_sites_come_from_kallsyms_text():
    kallsyms = ["ffffffff81a00000 T tcp_v4_rcv", "ffffffff81a00f00 t tcp_v4_fill_cb",
                "ffffffff81b00000 T __udp4_lib_rcv", "ffffffff81b00800 T udp_v4_early_demux",
                "ffffffff82000000 D tcp_hashinfo",            # data, not a function end
                "ffffffffc0000000 t tcp_v6_rcv\t[ipv6]",       # in a module
                "ffffffffc0000400 t tcp_v6_send_reset\t[ipv6]",
                "ffffffff81c00000 T udpv6_rcv", "ffffffff81c00100 T zzz_last"]
    assert drop_sites(kallsyms) == [(0xffffffff81a00000, 0xffffffff81a00f00),
                                    (0xffffffffc0000000, 0xffffffffc0000400),
                                    (0xffffffff81b00000, 0xffffffff81b00800),
                                    (0xffffffff81c00000, 0xffffffff81c00100)]


def test_the_probe_kinds_the_detector_names_are_the_models() -> None:
    from netwarden.model import SCAN_PROBE_KINDS
    from netwarden.sensor.scan import _RANK
    assert set(_RANK) == set(SCAN_PROBE_KINDS)
