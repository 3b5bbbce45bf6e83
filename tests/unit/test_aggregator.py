from __future__ import annotations

from netwarden.sensor.aggregator import FlowGroup, ProgramRef, WindowAggregator
from netwarden.sensor.identity import ExeRef


def group(raddr: str, pid_path: str = "/proc/1/exe") -> FlowGroup:
    program = ProgramRef(exe=ExeRef("/usr/bin/curl", 1, 2, pid_path), name="curl",
                         cmdline="curl x", uid=0, parent=None, grandparent=None, script=None)
    return FlowGroup(program, 2, "tcp", 6, "10.0.0.1", 40000, raddr, 443, 1)


def test_sums_within_a_window_and_closes_on_the_next():
    agg = WindowAggregator(10)
    assert agg.add(100.0, [(group("1.1.1.1"), 10, 1)]) is None
    assert agg.add(105.0, [(group("1.1.1.1"), 5, 2), (group("8.8.8.8"), 1, 1)]) is None
    closed = agg.add(110.5, [(group("1.1.1.1"), 7, 7)])
    assert closed is not None and closed.start == 100
    totals = closed.counters[group("1.1.1.1")]
    assert (totals.sent, totals.recv, totals.first_seen) == (15, 3, 100.0)
    assert agg.flush().start == 110


def test_the_same_program_in_two_processes_is_one_row():
    agg = WindowAggregator(10)
    agg.add(1.0, [(group("1.1.1.1", "/proc/1/exe"), 1, 0),
                  (group("1.1.1.1", "/proc/2/exe"), 1, 0)])
    window = agg.flush()
    assert len(window.counters) == 1


def test_an_idle_drain_closes_the_window():
    agg = WindowAggregator(10)
    agg.add(1.0, [(group("1.1.1.1"), 1, 0)])
    assert agg.add(12.0, []).start == 0
    assert agg.flush() is not None  # an empty window opened at 12 s
