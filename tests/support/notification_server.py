"""A notification server for tests: it owns org.freedesktop.Notifications on a real bus.

Run as ``python -m tests.support.notification_server ADDRESS OUTFILE``: it prints ``ready``
once it owns the name, then answers Notify (writing each call to OUTFILE as a JSON line),
GetCapabilities, GetServerInformation and CloseNotification as the freedesktop
Desktop Notifications spec (1.2) says. Anything else gets an UnknownMethod error.
"""

from __future__ import annotations

import json
import sys

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.Notifications"
CAPABILITIES = ["body", "body-markup", "actions"]


def serve(address: str, out_path: str) -> None:
    conn = open_dbus_connection(address)
    reply = conn.send_and_get_reply(message_bus.RequestName(NAME, 4))  # DO_NOT_QUEUE
    if reply.body[0] != 1:  # PRIMARY_OWNER
        raise SystemExit(f"could not own {NAME}: {reply.body}")
    print("ready", flush=True)
    next_id = 0
    with open(out_path, "a", encoding="utf-8") as out:
        while True:
            msg = conn.receive()
            if msg.header.message_type != MessageType.method_call:
                continue
            member = msg.header.fields.get(HeaderFields.member)
            if member == "Notify":
                app, replaces, icon, summary, body, actions, hints, timeout = msg.body
                next_id += 1
                out.write(json.dumps({
                    "id": next_id, "app_name": app, "replaces_id": replaces, "icon": icon,
                    "summary": summary, "body": body, "actions": list(actions),
                    "hints": {k: v[1] for k, v in hints.items()}, "timeout": timeout}) + "\n")
                out.flush()
                conn.send(new_method_return(msg, "u", (next_id,)))
            elif member == "GetCapabilities":
                conn.send(new_method_return(msg, "as", (CAPABILITIES,)))
            elif member == "GetServerInformation":
                conn.send(new_method_return(msg, "ssss", ("nwtest", "netwarden", "1", "1.2")))
            elif member == "CloseNotification":
                conn.send(new_method_return(msg))
            else:
                conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                                    (f"no method {member}",)))


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
