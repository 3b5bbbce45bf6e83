"""Event rows to notices: the text people read, and no crash on odd rows."""

from __future__ import annotations

import pytest

from netwarden.notify.notices import Notice, Urgency, render_event, render_verdict


def test_new_executable():
    n = render_event(3, 12.5, "new_executable", {"path": "/usr/bin/curl", "sha256": "ab" * 32,
                                                 "name": "curl", "uid": 1000})
    assert n is not None
    assert (n.title, n.body) == ("New program on the network",
                                 "curl (/usr/bin/curl)\nuser 1000, sha256 abababababab…")
    assert (n.key, n.program, n.name, n.event_ids, n.time) == (
        "new_executable:/usr/bin/curl", "/usr/bin/curl", "curl", (3,), 12.5)


def test_exe_modified():
    n = render_event(1, 0, "exe_modified", {"path": "/usr/bin/ssh", "name": "ssh",
                                            "old_sha256": "1" * 64, "new_sha256": "2" * 64})
    assert n is not None and n.title == "Program changed on disk"
    assert n.body == "ssh (/usr/bin/ssh)\nsha256 111111111111… → 222222222222…"


def test_new_device_with_randomized_mac():
    n = render_event(1, 0, "new_device", {"mac": "da:00:00:00:00:01", "ip": "192.0.2.7",
                                          "vendor": "", "name": "pixel", "interface": "eth0",
                                          "randomized": True})
    assert n is not None and n.title == "New device on the LAN"
    assert n.body.splitlines() == ["pixel 192.0.2.7 (da:00:00:00:00:01) on eth0",
                                   "(randomized MAC address: a phone or laptop hiding its "
                                   "identity)"]
    assert n.key == "new_device:da:00:00:00:00:01"


def test_device_changed_only_when_enabled():
    fields = {"mac": "00:11:22:33:44:55", "ip": "192.0.2.9", "vendor": "Acme", "name": "",
              "added_ports": [22, 80], "removed_ports": []}
    assert render_event(1, 0, "device_changed", fields) is None
    n = render_event(1, 0, "device_changed", fields, device_changes=True)
    assert n is not None and n.urgency is Urgency.LOW
    assert n.body == "Acme 192.0.2.9 (00:11:22:33:44:55)\nnewly open ports: 22, 80"


@pytest.mark.parametrize("fields, title, first_line, urgency", [
    ({"component": "health", "state": "lost", "message": "events dropped", "required": False,
      "counters": {"flow_map_full": 12}}, "netwarden lost data", "events dropped",
     Urgency.NORMAL),
    ({"component": "silent-zero", "state": "alarm", "message": "eth0 carried 4 MB, nothing "
      "attributed", "required": True}, "netwarden sees traffic it cannot attribute",
     "eth0 carried 4 MB, nothing attributed", Urgency.CRITICAL),
    ({"component": "net/count_send", "state": "failed", "message": "EPERM", "required": True},
     "netwarden sensor trouble", "net/count_send: failed", Urgency.CRITICAL),
])
def test_sensor_trouble(fields: dict, title: str, first_line: str, urgency: Urgency):
    n = render_event(1, 0, "sensor_error", fields)
    assert n is not None and n.trouble
    assert (n.title, n.body.splitlines()[0], n.urgency) == (title, first_line, urgency)
    assert n.key == f"sensor_error:{fields['component']}"


@pytest.mark.parametrize("kind", ["sensor_started", "sensor_stopped", "flux_capacitor", ""])
def test_silent_and_unknown_kinds_have_no_notice(kind: str):
    assert render_event(1, 0, kind, {"pid": 1}) is None


@pytest.mark.parametrize("fields", [{}, {"path": None, "name": 5, "uid": None},
                                    {"path": ["odd"], "sha256": 7}])
def test_missing_or_odd_fields_do_not_crash(fields: dict):
    for kind in ("new_executable", "exe_modified", "new_device", "sensor_error"):
        assert render_event(1, 0, kind, fields, device_changes=True) is not None


def test_json_round_trip_and_verdict():
    n = render_verdict("c" * 64, "/tmp/x", "x", 12, 70, 5.0)
    assert n.urgency is Urgency.CRITICAL and "12 of 70 engines" in n.body
    assert Notice.from_json(n.to_json()) == n


@pytest.mark.parametrize("fields, title, body", [
    ({"drift": "new_program", "key": "/opt/x/beacon", "item": 4, "path": "/opt/x/beacon",
      "sha256": "ab" * 32, "name": "beacon"}, "New program outside the baseline",
     "beacon (/opt/x/beacon)\nsha256 abababababab…\napprove: netwarden baseline approve 4"),
    ({"drift": "new_destination", "key": "/usr/bin/curl example.org", "item": 5,
      "path": "/usr/bin/curl", "name": "curl", "destination": "example.org"},
     "Program talks to a new destination",
     "curl (/usr/bin/curl) → example.org\napprove: netwarden baseline approve 5"),
    ({"drift": "new_listen_port", "key": "udp/5353", "item": 6, "protocol": "udp",
      "port": 5353, "path": "", "name": ""}, "New listening port outside the baseline",
     "udp port 5353 listening: an unknown program\napprove: netwarden baseline approve 6"),
    ({"drift": "new_device_port", "key": "02:00:00:00:00:01 tcp/22", "item": 7,
      "mac": "02:00:00:00:00:01", "ip": "192.0.2.9", "vendor": "Acme", "port": 22},
     "New open port on a LAN device",
     "Acme 192.0.2.9 (02:00:00:00:00:01)\nnewly open port: 22\n"
     "approve: netwarden baseline approve 7"),
])
def test_drift(fields: dict, title: str, body: str):
    n = render_event(9, 1.0, "drift", fields)
    assert n is not None and (n.title, n.body) == (title, body)
    assert n.key == f"drift:{fields['drift']}:{fields['key']}"


def test_events_the_baseline_tells_are_not_notified():
    fields = {"mac": "02:00:00:00:00:01", "ip": "192.0.2.9"}
    for mode in ("learning", "enforcing"):
        assert render_event(1, 1.0, "new_device", {**fields, "baseline": mode}) is None
    assert render_event(1, 1.0, "new_device", fields) is not None
