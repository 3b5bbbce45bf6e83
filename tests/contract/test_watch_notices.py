"""The watch's events through the real notifier to a real webhook: titles, bodies and fields
a receiver would act on; a muted kind stays silent."""

from __future__ import annotations

import time
from pathlib import Path


from netwarden.notify.delivery import RetryPolicy
from netwarden.notify.http_channels import WebhookChannel
from tests.support.http_recorder import Recorder
from tests.support.notifier_run import RunningNotifier, config
from tests.support.watch_data import seed_watch


def test_target_down_and_up_reach_the_webhook(tmp_path: Path, recorder: Recorder):
    seed_watch(tmp_path / "netwarden.db", time.time())
    hook = WebhookChannel(recorder.url + "/hook", "", "testhost", 2.0, RetryPolicy(2, 0.1))
    with RunningNotifier(config(desktop=False, cooldown_s=0, mute_kinds=["target_up"]),
                         tmp_path, [hook]):
        recorder.wait_for(2)
        time.sleep(1.0)                   # a target_up, were it not muted, would be here now
    payloads = [r.json() for r in recorder.requests]
    assert [(p["kind"], p["fields"]["target"]) for p in payloads] == [
        ("target_down", "gw"), ("target_down", "internet")]   # members raise none of their own
    gw, internet = payloads
    assert gw["title"] == "Connectivity lost" and gw["urgency"] == "critical"
    assert gw["body"].startswith("gw (icmp:192.0.2.1) down since ")
    assert gw["body"].endswith(": timed out") and gw["fields"]["failures"] == 3
    assert internet["body"].startswith("internet (all of: web, dns) down since")
    assert internet["fields"]["group"] == "internet"
    assert internet["fields"]["members"] == ["web", "dns"]
