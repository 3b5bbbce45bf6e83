"""The connectivity watch's pure parts: probe texts, the K-failure rule, groups, the config
section and how a notice reads."""

from __future__ import annotations

import pytest

from netwarden.config import ConfigError, config_from_dict
from netwarden.model.watch import (
    ProbeResult, State, TargetState, group_state, on_result, parse_probe,
)
from netwarden.notify.notices import render_event


@pytest.mark.parametrize("text, kind, host, port, name", [
    ("icmp:192.0.2.1", "icmp", "192.0.2.1", 0, ""),
    ("icmp:[2001:db8::1]", "icmp", "2001:db8::1", 0, ""),
    ("tcp:example.com:443", "tcp", "example.com", 443, ""),
    ("tcp:[::1]:22", "tcp", "::1", 22, ""),
    ("https://example.com:8443/health?x=1", "https", "example.com", 8443, ""),
    ("http://192.0.2.1/", "http", "192.0.2.1", 0, ""),
    ("dns:example.com@9.9.9.9", "dns", "9.9.9.9", 53, "example.com"),
    ("dns:example.com.@[2620:fe::fe]:5353", "dns", "2620:fe::fe", 5353, "example.com"),
])
def test_probe_texts(text: str, kind: str, host: str, port: int, name: str):
    probe = parse_probe(text)
    assert (probe.kind, probe.host, probe.port, probe.name, str(probe)) == \
        (kind, host, port, name, text)


@pytest.mark.parametrize("text, says", [
    ("ping:1.2.3.4", "must be"), ("tcp:host", "wants tcp:HOST:PORT"),
    ("tcp:host:99999", "from 1 to 65535"), ("dns:example.com", "wants dns:NAME@SERVER"),
    ("https:///nohost", "names no host"), ("icmp:", "must be"),
])
def test_bad_probe_texts_say_what_is_allowed(text: str, says: str):
    with pytest.raises(ValueError, match=says):
        parse_probe(text)


def _run(results: list[bool], fail_after: int = 3, recover_after: int = 2
         ) -> list[TargetState]:
    state, states = TargetState(), []
    for i, ok in enumerate(results):
        result = ProbeResult("t", float(i), ok, 0.001 if ok else None, "" if ok else f"e{i}")
        state = on_result(state, result, fail_after, recover_after)
        states.append(state)
    return states


def test_one_lost_probe_is_no_outage():
    states = _run([True, True, False, True, False, False, True])
    assert [s.state for s in states] == [State.UNKNOWN, State.UP] + [State.UP] * 5


def test_down_after_k_failures_from_the_first_failure_and_up_after_recover_after():
    states = _run([True, True, False, False, False, False, True, True, True])
    assert [s.state.value for s in states] == ["unknown", "up", "up", "up", "down", "down",
                                               "down", "up", "up"]
    assert states[4].since == 2.0 and states[4].reason == "e4"   # the run began at probe 2
    assert states[7].since == 6.0 and states[7].reason == "e5"   # the last failure's reason


def test_a_target_down_from_the_start_is_down():
    assert _run([False] * 3)[-1].state is State.DOWN


def test_a_group_is_down_only_when_all_members_are():
    assert group_state([State.DOWN, State.UP]) is State.UP
    assert group_state([State.DOWN, State.UNKNOWN]) is State.UNKNOWN
    assert group_state([State.DOWN, State.DOWN]) is State.DOWN
    assert group_state([]) is State.UNKNOWN


def test_config_section_defaults_and_validation():
    config = config_from_dict({"watch": {"interval_s": 10, "target": [
        {"name": "gw", "probe": "icmp:192.0.2.1"},
        {"name": "q9", "probe": "dns:example.com@9.9.9.9", "group": "internet",
         "interval_s": 2, "timeout_s": 1, "schedule": "Mon-Fri 08:00-18:00"}]}})
    gw, q9 = config.watch.targets()
    assert (gw.interval_s, gw.timeout_s, gw.group, gw.schedule) == (10.0, 5.0, "", "always")
    assert (q9.interval_s, q9.timeout_s, q9.group) == (2.0, 1.0, "internet")
    for bad, says in [
            ({"name": "a", "probe": "icmp:x", "schedule": "weekdays"}, "schedule"),
            ({"name": "a", "probe": "icmp:x", "expect_status": 42}, "HTTP status"),
            ({"name": "a", "probe": "icmp:x", "colour": "red"}, "keys: name, probe"),
            ({"name": "a", "probe": "icmp:x", "group": "a"}, "a name of its own"),
            ({"name": "a", "probe": "icmp:x", "timeout_s": 20}, "must not exceed"),
            ({"name": "a", "probe": "https://x/", "verify_tls": "no"}, "true or false")]:
        with pytest.raises(ConfigError, match=says):
            config_from_dict({"watch": {"interval_s": 10, "target": [bad]}})
    with pytest.raises(ConfigError, match="used twice"):
        config_from_dict({"watch": {"target": [{"name": "a", "probe": "icmp:x"}] * 2}})


def test_notices_name_the_target_the_probe_and_why():
    down = render_event(1, 100.0, "target_down", {
        "target": "web", "probe": "https://example.com/", "group": "", "since": 90.0,
        "reason": "timed out", "failures": 3})
    assert down is not None and down.title == "Connectivity lost"
    assert "web (https://example.com/) down since" in down.body and "timed out" in down.body
    up = render_event(2, 200.0, "target_up", {
        "target": "internet", "probe": "group", "group": "internet", "members": ["a", "b"],
        "since": 190.0, "down_since": 90.0, "downtime_s": 100.0, "reason": "x"})
    assert up is not None and up.body == "internet (all of: a, b) answers again after " \
                                         "100.0 s down"
    assert down.key == "target_down:web" and up.key == "target_up:internet"
