"""Desktop notifications: org.freedesktop.Notifications on the user's session bus, via jeepney.

jeepney is pure Python (see docs/notifier.md for why it and not dbus-python or dbus-fast); it
is imported when the first notification is sent, which is after any privilege drop.

The body is always escaped for markup (&, <, >): servers parse it even when they do not
advertise ``body-markup`` (dunst 1.9 does, as the dunst test found), and a program's name or
path must not be able to inject formatting or links into a security notice.
"""

from __future__ import annotations

import html
import os
from typing import Any

from netwarden.model.kinds import notice_kind
from netwarden.notify.delivery import DeliveryError, RetryPolicy
from netwarden.notify.notices import Notice

_SERVICE = "org.freedesktop.Notifications"
_PATH = "/org/freedesktop/Notifications"


#: A session bus can appear late at login: six tries, backing off from 2 s, before a notice fails.
BUS_RETRY = RetryPolicy(6, 2.0)


class DesktopChannel:
    name = "desktop"

    def __init__(self, bus_address: str | None = None, app_name: str = "netwarden",
                 timeout_s: float = 5.0, retry: RetryPolicy = BUS_RETRY) -> None:
        self.retry = retry
        self._address = bus_address
        self._app_name = app_name
        self._timeout_s = timeout_s
        self._conn: Any = None

    def _connect(self) -> Any:
        if self._conn is not None:
            return self._conn
        try:
            from jeepney.io.blocking import open_dbus_connection
        except ImportError:
            raise DeliveryError("jeepney is not installed (pip install 'netwarden[notifier]')",
                                permanent=True) from None
        address = self._address or os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if not address:
            raise DeliveryError("no session bus: DBUS_SESSION_BUS_ADDRESS is not set "
                                "(pass --bus or run in the desktop session)")
        try:
            conn = open_dbus_connection(address, auth_timeout=self._timeout_s)
        except (OSError, RuntimeError, ValueError) as exc:
            raise DeliveryError(f"cannot connect to the session bus {address}: {exc}") \
                from None
        self._conn = conn
        return conn

    def deliver(self, notice: Notice, delivery_id: int) -> str:
        from jeepney import DBusAddress, new_method_call
        conn = self._connect()
        body = html.escape(notice.body, quote=False)
        hints = {"urgency": ("y", int(notice.urgency)), "category": ("s", "network")}
        target = DBusAddress(_PATH, bus_name=_SERVICE, interface=_SERVICE)
        message = new_method_call(target, "Notify", "susssasa{sv}i", (
            self._app_name, 0, notice_kind(notice.kind).icon,
            notice.title, body, [], hints, -1))
        try:
            reply = conn.send_and_get_reply(message, timeout=self._timeout_s)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self.close()
            raise DeliveryError(f"session bus: {exc or type(exc).__name__}") from None
        (notification_id,) = _unwrap(reply)
        return f"notification id {notification_id}"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _unwrap(reply: Any) -> tuple[Any, ...]:
    """The reply's body, or a DeliveryError naming the D-Bus error (no server: retry later)."""
    from jeepney import HeaderFields, MessageType
    if reply.header.message_type == MessageType.error:
        name = reply.header.fields.get(HeaderFields.error_name, "org.freedesktop.DBus.Error")
        text = reply.body[0] if reply.body else ""
        raise DeliveryError(f"{name}: {text}".rstrip(": "))
    return tuple(reply.body)
