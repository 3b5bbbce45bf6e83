from __future__ import annotations

from pathlib import Path

from netwarden.sensor.silent_zero import SilentZeroDetector, read_interface_totals


def feed(detector: SilentZeroDetector, start: int, seconds: int, tx_per_s: int,
         rx_per_s: int, sent: int, recv: int, totals: list[int]) -> list[str]:
    found = []
    for t in range(start, start + seconds):
        totals[0] += tx_per_s
        totals[1] += rx_per_s
        found += [s.direction for s in detector.observe(float(t), (totals[0], totals[1]),
                                                        (sent, recv))]
    return found


def test_a_silent_direction_alarms_once_and_rearms():
    detector = SilentZeroDetector(period_s=10, min_bytes=1000)
    totals = [0, 0]
    assert feed(detector, 0, 20, 500, 500, 400, 400, totals) == []       # all attributed
    assert feed(detector, 20, 15, 500, 500, 0, 400, totals) == ["send"]  # send went silent
    assert feed(detector, 35, 10, 500, 500, 0, 400, totals) == []        # said once
    feed(detector, 45, 3, 500, 500, 300, 400, totals)                    # recovered
    assert feed(detector, 48, 15, 500, 500, 0, 400, totals) == ["send"]  # and again


def test_quiet_interfaces_and_short_history_do_not_alarm():
    detector = SilentZeroDetector(period_s=10, min_bytes=100_000)
    totals = [0, 0]
    assert feed(detector, 0, 30, 50, 50, 0, 0, totals) == []     # idle host: below the bar
    fresh = SilentZeroDetector(period_s=10, min_bytes=10)
    assert feed(fresh, 0, 5, 500, 500, 0, 0, [0, 0]) == []       # not a full period yet
    off = SilentZeroDetector(period_s=0, min_bytes=10)
    assert feed(off, 0, 30, 500, 500, 0, 0, [0, 0]) == []


def test_shrinking_counters_count_as_nothing():
    detector = SilentZeroDetector(period_s=5, min_bytes=1)
    detector.observe(0, (1000, 1000), (1, 1))
    assert detector.observe(1, (10, 10), (1, 1)) == []


def test_proc_net_dev(tmp_path: Path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "dev").write_text(
        "Inter-|   Receive                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
        "    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n"
        "  eth0: 500 5 0 0 0 0 0 0 300 3 0 0 0 0 0 0\n")
    assert read_interface_totals(str(tmp_path)) == (1300, 1500)
