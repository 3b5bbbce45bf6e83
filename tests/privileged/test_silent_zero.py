"""The silent-zero alarm: a byte hook detached under load must not go unnoticed.

Tracing links cannot be detached from outside the process that holds them (bpftool link
detach: EOPNOTSUPP), so the real Sensor runs in this process and its send hook's link is
destroyed while traffic flows.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from netwarden.config import load_config, with_db_path
from netwarden.sensor.service import Sensor
from netwarden.stopper import Stopper
from netwarden.store.export_queries import export_events
from netwarden.store.read_source import local_source
from netwarden.store.sqlite_db import open_readonly
from netwarden.store.sqlite_writer import SqliteWriter
from tests.support.sensor_proc import SensorProcess


def test_detached_send_hook_raises_the_alarm(workdir: Path, peer, gen_factory):
    # Unpinned: a pinned link outlives the destroy() below (its pin holds it), and the point
    # here is a hook that really goes dark.
    setup = SensorProcess.write_config(
        workdir / "silent", extra="silent_zero_after_s = 3\nsilent_zero_min_bytes = 200000\n"
                                  "pin_root = \"\"\n")
    config = with_db_path(load_config(setup.config, required=True), setup.db)
    sensor = Sensor(config)
    sensor.load_hooks()
    store = SqliteWriter(setup.db, int(time.time()), group=None)
    stop = Stopper()
    runner = threading.Thread(target=sensor.run, args=(stop, store))
    runner.start()
    flood = gen_factory("silent-flood")
    try:
        # A full period of attributed traffic first: no alarm for it.
        flood.run("flood-tcp", host="127.0.0.1", port=0, seconds=4, size=65536)
        assert sensor._net is not None
        sensor._net.link("tp_sock_send_length").destroy()    # the hook goes dark
        flood.run("flood-tcp", host="127.0.0.1", port=0, seconds=7, size=65536)
    finally:
        stop.request()
        runner.join(timeout=30)
        store.close()
    events = [e for e, _ in export_events(local_source(open_readonly(setup.db)))
              if e.kind == "sensor_error" and e.fields.get("component") == "silent-zero"]
    assert [e.fields["direction"] for e in events] == ["send"], json.dumps(
        [e.as_record() for e in events])
    assert events[0].fields["required"] is True
    assert "no send was attributed" in str(events[0].fields["message"])
