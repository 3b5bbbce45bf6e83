"""Channels besides the desktop, against real local services: HTTP servers the test runs and
a real mosquitto on loopback. Nothing leaves the machine."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwarden.notify.delivery import RetryPolicy
from netwarden.notify.http_channels import NtfyChannel, WebhookChannel, sign
from netwarden.notify.mqtt import MqttChannel
from netwarden.store.notifier_state import DeliveryStatus
from tests.support.http_recorder import Recorder, Script
from tests.support.mosquitto import Broker, start_broker
from tests.support.notifier_run import (
    RunningNotifier, add_events, config, create_db, new_program, wait_first, wait_until,
)
from tests.support.sensor_proc import netwarden

SECRET = "hunter2-but-longer"


FAST_RETRY = RetryPolicy(4, 0.2)


def webhook(url: str, retry: RetryPolicy = FAST_RETRY) -> WebhookChannel:
    return WebhookChannel(url, SECRET, "testhost", 2.0, retry)


def check_signature(headers: dict[str, str], body: bytes) -> bool:
    timestamp = headers["X-Netwarden-Timestamp"]
    expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Netwarden-Signature"], expected)


def test_webhook_is_signed_and_retried_after_a_500(tmp_path: Path, recorder: Recorder):
    recorder.script = Script(responses=[500, 200])
    create_db(tmp_path / "netwarden.db")
    add_events(tmp_path / "netwarden.db", [new_program(1)])
    with RunningNotifier(config(desktop=False), tmp_path,
                         [webhook(recorder.url + "/hook")]) as running:
        requests = recorder.wait_for(2)
        wait_first(running, lambda d: d.status is DeliveryStatus.DELIVERED,
                   "the delivery to be recorded")
        (delivery,) = running.deliveries()
    assert len(requests) == 2
    first, second = requests
    assert second.time - first.time >= 0.15               # backoff before the retry
    assert first.body == second.body and first.path == "/hook"
    for request in requests:
        assert check_signature(request.headers, request.body)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Netwarden-Delivery"] == str(delivery.id)
    payload = second.json()
    assert payload["kind"] == "new_executable" and payload["host"] == "testhost"
    assert payload["fields"]["path"] == "/opt/test/prog1"
    assert payload["title"] == "New program on the network"
    assert (delivery.attempts, delivery.detail) == (2, "HTTP 200")
    # A forged body fails the check a receiver would make.
    assert not check_signature(second.headers, second.body.replace(b"prog1", b"prog2"))
    assert sign(SECRET, "1", b"x") == "sha256=" + hmac.new(
        SECRET.encode(), b"1.x", hashlib.sha256).hexdigest()


def test_webhook_failures_are_recorded_and_visible(tmp_path: Path, recorder: Recorder):
    recorder.script = Script(responses=[503])
    create_db(tmp_path / "netwarden.db")
    add_events(tmp_path / "netwarden.db", [new_program(1)])
    refused = webhook("http://127.0.0.1:5499/nobody-listens", RetryPolicy(2, 0.1))
    refused.name = "ntfy"  # a second HTTP channel with its own outbox rows
    with RunningNotifier(config(desktop=False), tmp_path,
                         [webhook(recorder.url, RetryPolicy(3, 0.1)), refused]) as running:
        wait_until(lambda: {d.status for d in running.deliveries()}
                   == {DeliveryStatus.FAILED}, what="both deliveries to fail")
    assert len(recorder.requests) == 3
    state = str(tmp_path / "state.db")
    listing = netwarden("deliveries", "--state", state, "--json").stdout
    records = {r["channel"]: r for r in map(json.loads, listing.splitlines())}
    assert records["webhook"]["status"] == "failed"
    assert records["webhook"]["detail"] == "gave up after 3 attempts: HTTP 503 Service Unavailable"
    assert records["ntfy"]["detail"].startswith("gave up after 2 attempts: http://127.0.0.1:5499")
    status = netwarden("notifier", "--status", "--state", state).stdout
    assert "channel webhook: 0 delivered, 0 pending, 1 failed, 0 dropped" in status
    assert "last problem" in status and "HTTP 503" in status


def test_a_4xx_is_a_permanent_failure(tmp_path: Path, recorder: Recorder):
    recorder.script = Script(responses=[404])
    create_db(tmp_path / "netwarden.db")
    add_events(tmp_path / "netwarden.db", [new_program(1)])
    with RunningNotifier(config(desktop=False), tmp_path, [webhook(recorder.url)]) as running:
        failed = wait_first(running, lambda d: d.status is DeliveryStatus.FAILED, "a failure")
        assert failed.detail == "permanent error: HTTP 404 Not Found"
    assert len(recorder.requests) == 1


def test_a_slow_channel_does_not_hold_up_the_others(tmp_path: Path):
    slow, fast = Recorder(Script(delay_s=3.0)), Recorder()
    try:
        create_db(tmp_path / "netwarden.db")
        add_events(tmp_path / "netwarden.db", [new_program(i) for i in range(3)])
        ntfy = NtfyChannel(fast.url + "/topic", "", 2.0, RetryPolicy(2, 0.1))
        started = time.time()
        with RunningNotifier(config(desktop=False, max_per_window=10), tmp_path,
                             [webhook(slow.url, RetryPolicy(1, 0.1)), ntfy]):
            fast.wait_for(3)
            fast_done = time.time() - started
        assert len(fast.requests) == 3 and fast_done < 2.5
    finally:
        slow.close()
        fast.close()


def test_ntfy_push(tmp_path: Path, recorder: Recorder):
    create_db(tmp_path / "netwarden.db")
    add_events(tmp_path / "netwarden.db", [
        ("sensor_error", {"component": "silent-zero", "state": "alarm", "required": True,
                          "message": "eth0: traffic, none attributed"}),
        ("new_device", {"mac": "00:11:22:33:44:55", "ip": "192.0.2.8", "vendor": "Acme",
                        "name": "printer", "interface": "eth0", "randomized": False})])
    channel = NtfyChannel(recorder.url + "/alerts", "tk_secret", 2.0, RetryPolicy(2, 0.1))
    with RunningNotifier(config(desktop=False), tmp_path, [channel]):
        requests = recorder.wait_for(2)
    first, second = requests
    assert (first.method, first.path) == ("POST", "/alerts")
    assert first.headers["Title"] == "netwarden sees traffic it cannot attribute"
    assert (first.headers["Priority"], first.headers["Tags"]) == ("5", "warning")
    assert first.headers["Authorization"] == "Bearer tk_secret"
    assert first.body.decode() == "eth0: traffic, none attributed"
    assert second.headers["Title"] == "New device on the LAN"
    assert second.body.decode() == "printer 192.0.2.8 (00:11:22:33:44:55, Acme) on eth0"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = start_broker(tmp_path / "mosquitto")
    yield running
    running.stop()


def subscribe(port: int, topic: str, received: list[tuple[str, dict[str, object]]],
              ready: threading.Event):  # noqa: ANN201 - a paho client
    import paho.mqtt.client as mqtt
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="nwtest-sub")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, msg: received.append((msg.topic,
                                                             json.loads(msg.payload)))
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_mqtt_to_a_real_mosquitto(tmp_path: Path, broker: Broker):
    received: list[tuple[str, dict[str, object]]] = []
    ready = threading.Event()
    client = subscribe(broker.port, "netwarden/#", received, ready)
    try:
        assert ready.wait(10)
        create_db(tmp_path / "netwarden.db")
        add_events(tmp_path / "netwarden.db", [new_program(1), (
            "exe_modified", {"path": "/usr/bin/ssh", "name": "ssh", "old_sha256": "1" * 64,
                             "new_sha256": "2" * 64})])
        channel = MqttChannel("127.0.0.1", broker.port, "netwarden", "testhost", "", "", False,
                              1, 5.0, RetryPolicy(3, 0.2))
        with RunningNotifier(config(desktop=False), tmp_path, [channel]) as running:
            wait_until(lambda: len(received) >= 2, what="two MQTT messages")
            wait_until(lambda: all(d.status is DeliveryStatus.DELIVERED
                                   for d in running.deliveries()), what="records")
            details = [d.detail for d in running.deliveries()]
    finally:
        client.loop_stop()
        client.disconnect()
    assert [topic for topic, _ in received] == ["netwarden/testhost/new_executable",
                                                "netwarden/testhost/exe_modified"]
    assert received[1][1]["body"] == ("ssh (/usr/bin/ssh)\n"
                                      "sha256 111111111111… → 222222222222…")
    assert received[0][1]["fields"]["sha256"] == f"{1:064x}"
    assert details[0].startswith("published to netwarden/testhost/new_executable")


def test_mqtt_broker_down_then_up_is_retried(tmp_path: Path):
    from tests.support.http_recorder import free_port
    create_db(tmp_path / "netwarden.db")
    add_events(tmp_path / "netwarden.db", [new_program(1)])
    port = free_port(range(5400, 5410))
    channel = MqttChannel("127.0.0.1", port, "netwarden", "testhost", "", "", False, 1, 2.0,
                          RetryPolicy(20, 0.2))
    with RunningNotifier(config(desktop=False), tmp_path, [channel]) as running:
        failed = wait_first(running, lambda d: d.attempts >= 1, "a failed attempt")
        assert "Connection refused" in failed.detail
        conf = tmp_path / "late.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                        f"persistence false\nuser {__import__('getpass').getuser()}\n")
        late = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_first(running, lambda d: d.status is DeliveryStatus.DELIVERED,
                       "delivery once the broker is up", timeout=20)
        finally:
            late.terminate()
            late.wait(10)


def test_mqtt_login_rejected_is_a_permanent_failure_and_the_right_one_works(tmp_path: Path):
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "warden", "right"],
                   check=True, capture_output=True)
    os.chmod(passwords, 0o600)
    broker = start_broker(tmp_path / "mosquitto", password_file=passwords)
    try:
        create_db(tmp_path / "netwarden.db")
        add_events(tmp_path / "netwarden.db", [new_program(1)])

        def channel(password: str) -> MqttChannel:
            return MqttChannel("127.0.0.1", broker.port, "netwarden", "testhost", "warden",
                               password, False, 1, 5.0, RetryPolicy(5, 0.2))
        with RunningNotifier(config(desktop=False), tmp_path, [channel("wrong")]) as running:
            failed = wait_first(running, lambda d: d.status is DeliveryStatus.FAILED,
                                "the rejected login to be recorded")
        assert failed.attempts == 1
        assert failed.detail.startswith("permanent error: broker refused the connection: ")
        add_events(tmp_path / "netwarden.db", [new_program(2)])
        with RunningNotifier(config(desktop=False), tmp_path, [channel("right")]) as running:
            wait_until(lambda: [d.status for d in running.deliveries()] ==
                       [DeliveryStatus.FAILED, DeliveryStatus.DELIVERED], what="delivery")
    finally:
        broker.stop()


def drift(kind: str, key: str, item: int, **fields: object) -> tuple[str, dict[str, object]]:
    return ("drift", {"drift": kind, "key": key, "item": item, **fields})


def test_drift_reaches_every_channel_with_mutes_per_drift_kind_and_cooldown(
        tmp_path: Path, recorder: Recorder, broker: Broker):
    """Issue 22 point 3: drift goes the way of the other events, on webhook, ntfy and MQTT
    (desktop: test_notifier_desktop's path is the same Notice); `drift:new_device_port` is
    muted alone; a second drift of one thing inside the cooldown is held; a new program seen
    while the baseline learned is not notified at all."""
    from netwarden.mutes import add_mutes
    received: list[tuple[str, dict[str, object]]] = []
    ready = threading.Event()
    client = subscribe(broker.port, "netwarden/#", received, ready)
    ntfy_recorder = Recorder()
    try:
        assert ready.wait(10)
        add_mutes(tmp_path / "mutes.toml", kinds=["drift:new_device_port"])
        create_db(tmp_path / "netwarden.db")
        prog = {"path": "/opt/x/beacon", "sha256": "e" * 64, "name": "beacon"}
        add_events(tmp_path / "netwarden.db", [
            ("new_executable", {**new_program(1)[1], "baseline": "learning"}),
            ("new_executable", {**new_program(2)[1], "baseline": "enforcing"}),
            drift("new_program", "/opt/x/beacon", 7, **prog),
            drift("new_device_port", "02:00:00:00:00:01 tcp/22", 8, mac="02:00:00:00:00:01",
                  ip="192.0.2.9", port=22),
            drift("new_listen_port", "tcp/8080", 9, protocol="tcp", port=8080,
                  path="/usr/bin/python3", name="python3"),
            drift("new_program", "/opt/x/beacon", 7, **prog)])
        channels = [webhook(recorder.url),
                    NtfyChannel(ntfy_recorder.url + "/alerts", "", 2.0, RetryPolicy(2, 0.1)),
                    MqttChannel("127.0.0.1", broker.port, "netwarden", "testhost", "", "",
                                False, 1, 5.0, RetryPolicy(3, 0.2))]
        with RunningNotifier(config(desktop=False), tmp_path, channels) as running:
            hooks = recorder.wait_for(2)
            pushes = ntfy_recorder.wait_for(2)
            wait_until(lambda: len(received) >= 2, what="two MQTT messages")
            wait_until(lambda: running.counters().get("cooled", 0) >= 1, what="the cooldown")
            time.sleep(0.5)
            counters = running.counters()
    finally:
        client.loop_stop()
        client.disconnect()
        ntfy_recorder.close()
    assert [(h.json()["fields"]["drift"], h.json()["fields"]["item"]) for h in recorder.requests
            ] == [("new_program", 7), ("new_listen_port", 9)]
    assert len(hooks) == 2 and len(received) == 2 and len(ntfy_recorder.requests) == 2
    assert [p.headers["Title"] for p in pushes] == [
        "New program outside the baseline", "New listening port outside the baseline"]
    assert pushes[0].headers["Tags"] == "warning"
    assert "netwarden baseline approve 7" in pushes[0].body.decode()
    assert [topic for topic, _ in received] == ["netwarden/testhost/drift"] * 2
    assert counters["muted"] == 1 and counters["cooled"] == 1
