"""VirusTotal lookups against a local server speaking the documented v3 files API."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from netwarden.notify.delivery import RetryPolicy
from netwarden.notify.http_channels import WebhookChannel
from netwarden.notify.virustotal import VirusTotalSettings
from tests.support.http_recorder import Recorded, Recorder, Script
from tests.support.notifier_run import (
    RunningNotifier, add_events, config, create_db, new_program, wait_until,
)
from tests.support.sensor_proc import netwarden

KEY = "vt-test-key"
MALICIOUS, CLEAN, UNKNOWN = "e" * 64, "c" * 64, "0" * 63 + "1"


def stats(malicious: int) -> dict[str, int]:
    return {"harmless": 0, "type-unsupported": 4, "suspicious": 1, "confirmed-timeout": 0,
            "timeout": 0, "failure": 0, "malicious": malicious, "undetected": 66 - malicious}


def virustotal(request: Recorded) -> tuple[int, object]:
    """The v3 files endpoint: 401 without the key, 404 NotFoundError for unknown files."""
    match = re.fullmatch(r"/api/v3/files/([0-9a-f]{64})", request.path)
    if request.method != "GET" or match is None:
        return 400, {"error": {"code": "BadRequestError", "message": "unexpected request"}}
    headers = {name.lower(): value for name, value in request.headers.items()}  # HTTP: any case
    if headers.get("x-apikey") != KEY:
        return 401, {"error": {"code": "WrongCredentialsError", "message": "Wrong API key"}}
    sha = match.group(1)
    if sha == UNKNOWN or sha.startswith("f"):
        return 404, {"error": {"code": "NotFoundError", "message": f'File "{sha}" not found'}}
    attributes = {"last_analysis_stats": stats(42 if sha == MALICIOUS else 0),
                  "meaningful_name": "x", "sha256": sha}
    return 200, {"data": {"id": sha, "type": "file", "links": {"self": request.path},
                          "attributes": attributes}}


def settings(url: str, per_minute: int = 4, key: str = KEY) -> VirusTotalSettings:
    return VirusTotalSettings(url, key, per_minute=per_minute, per_day=500, threshold=1,
                              timeout_s=5.0)


def test_verdicts_are_stored_shown_and_a_malicious_one_notifies(tmp_path: Path):
    vt, hook = Recorder(Script(handler=virustotal)), Recorder()
    try:
        create_db(tmp_path / "netwarden.db")
        add_events(tmp_path / "netwarden.db", [
            new_program(1, MALICIOUS), new_program(2, CLEAN), new_program(3, UNKNOWN),
            ("exe_modified", {"path": "/opt/test/prog2", "name": "prog2",
                              "old_sha256": CLEAN, "new_sha256": "f" * 64})])
        channel = WebhookChannel(hook.url, "", "testhost", 2.0, RetryPolicy(2, 0.1))
        with RunningNotifier(config(desktop=False, max_per_window=20), tmp_path, [channel],
                             settings(vt.url)):
            got = hook.wait_for(5)
            time.sleep(0.5)
        assert len(vt.requests) == 4
        assert {r.method for r in vt.requests} == {"GET"}        # nothing is ever uploaded
        kinds = [r.json()["kind"] for r in hook.requests]
        assert kinds == ["new_executable"] * 3 + ["exe_modified", "virustotal"]
        alert = got[4].json()
        assert alert["title"] == "VirusTotal: malicious program"
        assert alert["urgency"] == "critical"
        assert alert["body"] == (f"prog1 (/opt/test/prog1)\n42 of 71 engines call it "
                                 f"malicious\nsha256 {MALICIOUS}")
        listing = netwarden("verdicts", "--state", str(tmp_path / "state.db"), "--json").stdout
        verdicts = {v["sha256"]: v for v in map(json.loads, listing.splitlines())}
        assert {sha: v["status"] for sha, v in verdicts.items()} == {
            MALICIOUS: "malicious", CLEAN: "clean", UNKNOWN: "unknown", "f" * 64: "unknown"}
        assert verdicts[MALICIOUS]["malicious"] == 42 and verdicts[MALICIOUS]["total"] == 71
        assert verdicts[UNKNOWN]["detail"] == "not known to VirusTotal (NotFoundError)"
        text = netwarden("verdicts", "--state", str(tmp_path / "state.db")).stdout
        assert f"malicious 42/71  /opt/test/prog1  {MALICIOUS}" in text
    finally:
        vt.close()
        hook.close()


def test_the_rate_limit_holds_across_a_restart(tmp_path: Path):
    vt = Recorder(Script(handler=virustotal))
    try:
        create_db(tmp_path / "netwarden.db")
        add_events(tmp_path / "netwarden.db",
                   [new_program(i, f"{i + 0xa0:064x}") for i in range(6)])
        with RunningNotifier(config(desktop=False), tmp_path, [], settings(vt.url)) as running:
            vt.wait_for(4)
            time.sleep(2.0)
            assert len(vt.requests) == 4                     # four in the first minute
            waiting = float(running.meta("vt_waiting_until") or 0)
        assert abs(waiting - (vt.requests[0].time + 60)) < 1.0
        with RunningNotifier(config(desktop=False), tmp_path, [], settings(vt.url)):
            time.sleep(2.0)
        assert len(vt.requests) == 4                         # a restart does not reset it
        status = netwarden("notifier", "--status", "--state", str(tmp_path / "state.db"))
        assert "virustotal: 4 clean, 2 pending" in status.stdout
    finally:
        vt.close()


def test_a_rejected_key_pauses_lookups_and_is_visible(tmp_path: Path):
    vt = Recorder(Script(handler=virustotal))
    try:
        create_db(tmp_path / "netwarden.db")
        add_events(tmp_path / "netwarden.db", [new_program(1, CLEAN), new_program(2, MALICIOUS)])
        with RunningNotifier(config(desktop=False), tmp_path, [],
                             settings(vt.url, key="wrong")) as running:
            wait_until(lambda: running.meta("vt_last_error"), what="the error to be recorded")
            time.sleep(1.0)
        assert len(vt.requests) == 1                         # paused, not hammering
        status = netwarden("notifier", "--status", "--state", str(tmp_path / "state.db")).stdout
        assert "key rejected: HTTP 401 WrongCredentialsError" in status
    finally:
        vt.close()
