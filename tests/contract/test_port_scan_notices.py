"""A `port_scan` event row reaches people like the other kinds: webhook, ntfy and MQTT (real
local services), the cooldown per source, and mutes. The desktop channel takes every notice
the same way (tests/contract/test_notifier_desktop.py); the flood rules are pure and tested
in tests/unit/test_notify_flood.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwarden.notify.delivery import RetryPolicy
from netwarden.notify.http_channels import NtfyChannel, WebhookChannel
from netwarden.notify.mqtt import MqttChannel
from netwarden.store.notifier_state import DeliveryStatus
from tests.contract.test_notifier_channels import subscribe
from tests.support.http_recorder import Recorder
from tests.support.mosquitto import Broker, start_broker
from tests.support.notifier_run import (
    RunningNotifier, add_events, config, create_db, new_program, wait_until,
)


def scan(source: str, ports: int = 40) -> tuple[str, dict[str, object]]:
    return ("port_scan", {"source": source, "ports": ports, "probe": "syn", "duration_s": 2.5,
                          "sample": [22, 23, 25], "protocols": ["tcp"], "state": "ended",
                          "report": 1, "first": 1.0, "last": 3.5,
                          "probes": {"syn": ports}, "targets": ["192.0.2.1"]})


def test_webhook_and_ntfy_carry_a_scan_once_per_source(tmp_path: Path, recorder: Recorder):
    create_db(tmp_path / "netwarden.db")
    # The same source twice (a second scan within the cooldown), then another source.
    add_events(tmp_path / "netwarden.db", [scan("198.51.100.7"), scan("198.51.100.7", 60),
                                           scan("203.0.113.9")])
    channels = [WebhookChannel(recorder.url + "/hook", "s" * 20, "testhost", 2.0,
                               RetryPolicy(2, 0.1)),
                NtfyChannel(recorder.url + "/alerts", "", 2.0, RetryPolicy(2, 0.1))]
    with RunningNotifier(config(desktop=False), tmp_path, channels) as running:
        requests = recorder.wait_for(4)
        wait_until(lambda: len(running.deliveries()) >= 4 and all(
            d.status is DeliveryStatus.DELIVERED for d in running.deliveries()),
            what="four deliveries")
        time.sleep(0.5)
        assert len(recorder.requests) == 4   # the held-back second scan sent nothing
    hooks = sorted((r.json() for r in requests if r.path == "/hook"),
                   key=lambda p: str(p["fields"]["source"]))
    assert [(p["kind"], p["fields"]["source"], p["fields"]["ports"]) for p in hooks] == \
        [("port_scan", "198.51.100.7", 40), ("port_scan", "203.0.113.9", 40)]
    assert hooks[0]["title"] == "Port scan of this host"
    pushes = [r for r in requests if r.path == "/alerts"]
    assert {r.headers["Title"] for r in pushes} == {"Port scan of this host"}
    assert {r.headers["Tags"] for r in pushes} == {"mag"}
    assert "198.51.100.7 probed 40 ports (half-open SYN) in 2.5 s\nports 22, 23, 25" in \
        {r.body.decode() for r in pushes}


def test_a_muted_kind_is_not_sent(tmp_path: Path, recorder: Recorder):
    create_db(tmp_path / "netwarden.db")
    add_events(tmp_path / "netwarden.db", [scan("198.51.100.7"), new_program(1)])
    channel = WebhookChannel(recorder.url + "/hook", "s" * 20, "testhost", 2.0,
                             RetryPolicy(2, 0.1))
    with RunningNotifier(config(desktop=False, mute_kinds=["port_scan"]), tmp_path,
                         [channel]) as running:
        (request,) = recorder.wait_for(1)
        wait_until(lambda: running.deliveries(), what="a delivery")
        time.sleep(0.5)
    assert request.json()["kind"] == "new_executable"
    assert len(recorder.requests) == 1


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = start_broker(tmp_path / "mosquitto")
    yield running
    running.stop()


def test_mqtt_publishes_a_scan(tmp_path: Path, broker: Broker):
    received: list[tuple[str, dict[str, object]]] = []
    ready = threading.Event()
    client = subscribe(broker.port, "netwarden/#", received, ready)
    try:
        assert ready.wait(10)
        create_db(tmp_path / "netwarden.db")
        add_events(tmp_path / "netwarden.db", [scan("2001:db8::9")])
        channel = MqttChannel("127.0.0.1", broker.port, "netwarden", "testhost", "", "", False,
                              1, 5.0, RetryPolicy(3, 0.2))
        with RunningNotifier(config(desktop=False), tmp_path, [channel]):
            wait_until(lambda: received, what="an MQTT message")
    finally:
        client.loop_stop()
        client.disconnect()
    ((topic, payload),) = received
    assert topic == "netwarden/testhost/port_scan"
    assert payload["fields"]["source"] == "2001:db8::9"
