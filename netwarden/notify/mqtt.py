"""MQTT channel: each notice as JSON to ``TOPIC/HOST/KIND`` through paho-mqtt.

paho is imported when the first message is sent (after any privilege drop). One connection
is kept and reused; a lost one is reopened on the next attempt. A publish counts as delivered
when the broker acknowledged it (QoS 1 or 2) or when it was written (QoS 0).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from netwarden.notify.delivery import DeliveryError, RetryPolicy
from netwarden.notify.notices import Notice


class MqttChannel:
    name = "mqtt"

    def __init__(self, host: str, port: int, topic: str, hostname: str, username: str,
                 password: str, tls: bool, qos: int, timeout_s: float,
                 retry: RetryPolicy) -> None:
        self.retry = retry
        self._host, self._port, self._topic, self._hostname = host, port, topic, hostname
        self._username, self._password, self._tls = username, password, tls
        self._qos, self._timeout_s = qos, timeout_s
        self._client: Any = None

    def topic_for(self, notice: Notice) -> str:
        return f"{self._topic.rstrip('/')}/{self._hostname}/{notice.kind}"

    def _connect(self) -> Any:
        if self._client is not None and self._client.is_connected():
            return self._client
        self.close()
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise DeliveryError("paho-mqtt is not installed (pip install "
                                "'netwarden[notifier]')", permanent=True) from None
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"netwarden-{self._hostname}", protocol=mqtt.MQTTv311)
        if self._username:
            client.username_pw_set(self._username, self._password or None)
        if self._tls:
            client.tls_set()
        connected = threading.Event()
        outcome: list[Any] = []

        def on_connect(_client: Any, _userdata: Any, _flags: Any, reason: Any,
                       _properties: Any) -> None:
            outcome.append(reason)
            connected.set()
        client.on_connect = on_connect
        try:
            client.connect(self._host, self._port, keepalive=60)
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"broker {self._host}:{self._port}: {exc}") from None
        client.loop_start()
        if not connected.wait(self._timeout_s):
            client.loop_stop()
            client.disconnect()
            raise DeliveryError(f"broker {self._host}:{self._port}: no answer to CONNECT")
        if outcome[0].is_failure:
            client.loop_stop()
            client.disconnect()
            # Bad credentials or a refused client id do not heal by retrying.
            raise DeliveryError(f"broker refused the connection: {outcome[0]}",
                                permanent=True)
        self._client = client
        return client

    def deliver(self, notice: Notice, delivery_id: int) -> str:
        client = self._connect()
        record = {"version": 1, "host": self._hostname, "delivery_id": delivery_id,
                  **notice.as_record()}
        payload = json.dumps(record, sort_keys=True, ensure_ascii=False)
        info = client.publish(self.topic_for(notice), payload, qos=self._qos)
        try:
            info.wait_for_publish(self._timeout_s)
        except (RuntimeError, ValueError) as exc:
            self.close()
            raise DeliveryError(f"publish failed: {exc}") from None
        if not info.is_published():
            self.close()
            raise DeliveryError(f"broker did not acknowledge within {self._timeout_s} s")
        return f"published to {self.topic_for(notice)} (mid {info.mid})"

    def close(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None
