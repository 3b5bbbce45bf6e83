"""`netwarden doctor` on this kernel: the hook set, why, and a self-test that counts."""

from __future__ import annotations

import json

from tests.support.sensor_proc import netwarden


def test_doctor_loads_chooses_and_counts():
    done = netwarden("doctor", "--json")
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["load_tested"] is True
    assert report["chosen"] == "tracepoint"
    assert report["hook_sets"][0].startswith("tracepoint: usable")
    assert report["self_test_ok"] is True
    assert "tcp sent 400000/400000" in report["self_test"]
    assert "udp received 28000/28000" in report["self_test"]
    states = {p["program"]: p["state"] for p in report["programs"]}
    assert states["tp_sock_send_length"] == "attached"
    assert states["fexit_inet_sendmsg"] == "not selected"


def test_doctor_without_loading_reads_btf_only():
    report = json.loads(netwarden("doctor", "--json", "--no-load").stdout)
    assert report["load_tested"] is False and report["self_test_ok"] is None
    assert report["chosen"] == "tracepoint"
