"""The one table of event kinds: every kind is described, and the notifier's views of it."""

from __future__ import annotations

from netwarden.model import EventKind
from netwarden.model.kinds import (
    EVENT_KINDS, MUTABLE_KINDS, SILENT_KINDS, UNKNOWN_KIND, count_label, mute_names,
    notice_kind,
)


def test_every_event_kind_is_described():
    assert set(EVENT_KINDS) == set(EventKind)


def test_what_the_table_says():
    assert list(MUTABLE_KINDS) == ["new_executable", "exe_modified", "new_device",
                                   "device_changed", "sensor_error", "host_silent",
                                   "host_back", "target_down", "target_up", "drift",
                                   "port_scan", "virustotal", "report",
                                   "drift:new_program", "drift:new_destination",
                                   "drift:new_listen_port", "drift:new_device",
                                   "drift:new_device_port"]
    assert SILENT_KINDS == {"sensor_started", "sensor_stopped"}
    assert notice_kind("summary") is UNKNOWN_KIND
    assert (notice_kind("new_device").icon, notice_kind("virustotal").tag) == \
        ("network-wired", "rotating_light")
    assert count_label("new_executable", 1) == "1 new program"
    assert count_label("virustotal", 2) == "2 malicious verdicts"
    assert count_label("from_the_future", 3) == "3 from_the_future events"


def test_drift_is_muted_whole_or_per_drift_kind():
    assert mute_names("drift", {"drift": "new_listen_port"}) == \
        ("drift", "drift:new_listen_port")
    assert mute_names("new_executable", {"drift": "x"}) == ("new_executable",)
    assert count_label("drift", 2) == "2 drifts from the baseline"
