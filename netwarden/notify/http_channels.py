"""HTTP channels: a signed JSON webhook and an ntfy-style push, over the standard library.

Webhook: ``POST url`` with the notice as JSON (``Content-Type: application/json``) and

- ``X-Netwarden-Timestamp``: epoch seconds when the request was signed;
- ``X-Netwarden-Signature: sha256=HEX``: HMAC-SHA256 with the shared secret over
  ``TIMESTAMP + "." + BODY`` (the raw bytes), so a receiver can reject forged and replayed
  requests (compare in constant time; refuse old timestamps);
- ``X-Netwarden-Delivery``: the delivery id, the same on every retry (deduplicate on it).

ntfy: ``POST url`` with the body as the message and ``Title``, ``Priority``, ``Tags`` headers
(non-ASCII titles RFC 2047-encoded, which ntfy decodes), ``Authorization: Bearer`` if a token
is set. The scheduled report is sent whole, as Markdown (``Markdown: yes``).

Outcomes: 2xx delivered; 408, 429 and 5xx, timeouts and refused connections are retried;
other statuses are permanent failures (a wrong URL or key does not heal by retrying).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from netwarden.model.kinds import Urgency, notice_kind
from netwarden.notify.delivery import DeliveryError, RetryPolicy
from netwarden.notify.notices import Notice

USER_AGENT = "netwarden-notifier/0.1"
_RETRYABLE = {408, 425, 429}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Netwarden-Signature value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> str:
    """POST and classify the outcome; returns 'HTTP <status>' or raises DeliveryError."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"User-Agent": USER_AGENT, **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read(65536)
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        status = exc.code
        permanent = not (status >= 500 or status in _RETRYABLE)
        raise DeliveryError(f"HTTP {status} {exc.reason}", permanent=permanent) from None
    except (urllib.error.URLError, OSError, socket.timeout) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{url}: {reason or type(exc).__name__}") from None


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, secret: str, host: str, timeout_s: float,
                 retry: RetryPolicy, clock: Callable[[], float] = time.time) -> None:
        self.retry = retry
        self._url, self._secret, self._host = url, secret, host
        self._timeout_s = timeout_s
        self._clock = clock

    def payload(self, notice: Notice, delivery_id: int) -> bytes:
        record = {"version": 1, "host": self._host, "delivery_id": delivery_id,
                  **notice.as_record()}
        return json.dumps(record, sort_keys=True, ensure_ascii=False).encode()

    def deliver(self, notice: Notice, delivery_id: int) -> str:
        body = self.payload(notice, delivery_id)
        headers = {"Content-Type": "application/json",
                   "X-Netwarden-Delivery": str(delivery_id)}
        if self._secret:
            timestamp = str(int(self._clock()))
            headers["X-Netwarden-Timestamp"] = timestamp
            headers["X-Netwarden-Signature"] = sign(self._secret, timestamp, body)
        return post(self._url, body, headers, self._timeout_s)

    def close(self) -> None:
        pass


_NTFY_PRIORITY = {Urgency.LOW: "2", Urgency.NORMAL: "3", Urgency.CRITICAL: "5"}


def header_text(text: str) -> str:
    """An HTTP header value: ASCII as is, anything else as an RFC 2047 encoded word."""
    if text.isascii():
        return text
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


class NtfyChannel:
    name = "ntfy"

    def __init__(self, url: str, token: str, timeout_s: float, retry: RetryPolicy) -> None:
        self.retry = retry
        self._url, self._token, self._timeout_s = url, token, timeout_s

    def deliver(self, notice: Notice, delivery_id: int) -> str:
        headers = {"Title": header_text(notice.title),
                   "Priority": _NTFY_PRIORITY[notice.urgency],
                   "Tags": notice_kind(notice.kind).tag,
                   "Content-Type": "text/plain; charset=utf-8"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        # A notice with a whole document (the scheduled report) sends it, rendered by ntfy.
        markdown = notice.field_dict().get("markdown")
        if isinstance(markdown, str) and markdown:
            headers["Markdown"] = "yes"
            headers["Content-Type"] = "text/markdown; charset=utf-8"
            return post(self._url, markdown.encode(), headers, self._timeout_s)
        return post(self._url, notice.body.encode(), headers, self._timeout_s)

    def close(self) -> None:
        pass
