"""The Prometheus text format as netwarden writes it: escaping, HELP and TYPE, values, and
the families built from counts (top N plus "other"), checked by the client library's parser."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netwarden.metrics.counting import OTHER, Counts, Direction
from netwarden.metrics.exposition import (
    Family,
    escape_help,
    escape_label_value,
    family,
    format_value,
    render,
)
from netwarden.metrics.families import build
from netwarden.store.metric_queries import DeviceCounts

NASTY = 'C:\\Program Files\\"odd"\nname'


def parsed(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_label_values_escape_backslash_quote_and_newline():
    assert escape_label_value(NASTY) == 'C:\\\\Program Files\\\\\\"odd\\"\\nname'
    assert escape_help("a\\b\nc \"q\"") == "a\\\\b\\nc \"q\""


def test_help_and_type_come_first_then_the_samples():
    text = render([family("x_total", "counter", "What x counts\nsecond line",
                          [({"exe": "b"}, 2), ({"exe": "a"}, 1)]),
                   family("y_bytes", "gauge", "A level", 5)])
    assert text.splitlines() == [
        "# HELP x_total What x counts\\nsecond line",
        "# TYPE x_total counter",
        'x_total{exe="a"} 1',
        'x_total{exe="b"} 2',
        "# HELP y_bytes A level",
        "# TYPE y_bytes gauge",
        "y_bytes 5",
    ]
    assert text.endswith("\n")


def test_a_nasty_label_value_survives_the_client_parser():
    text = render([family("netwarden_executable_sent_bytes_total", "counter", "h",
                          [({"exe": NASTY}, 12345678901234)])])
    (sample,) = parsed(text)["netwarden_executable_sent_bytes"].samples
    assert sample.labels == {"exe": NASTY}
    assert sample.value == 12345678901234


def test_values_print_exactly():
    assert format_value(12345678901234567) == "12345678901234567"
    assert format_value(2.5) == "2.5"
    assert format_value(float("nan")) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"


@pytest.mark.parametrize("name, kind, labels", [
    ("bad-name_total", "counter", {}),
    ("x_bytes", "counter", {}),            # a counter's name ends in _total
    ("x_total", "histogram", {}),
    ("x_total", "counter", {"bad-label": "v"}),
    ("x_total", "counter", {"__reserved": "v"}),
])
def test_wrong_names_and_types_are_refused(name, kind, labels):
    with pytest.raises(ValueError):
        family(name, kind, "h", [(labels, 1)])


def test_a_name_given_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        render([Family("x_total", "counter", "h"), Family("x_total", "counter", "h")])


def counts(**changes: object) -> Counts:
    base = Counts(started=1_700_000_000.0, store_up=True)
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_top_n_series_and_other():
    c = counts(own={"/usr/bin/curl": Direction(1234, 5678), "/usr/bin/gone": Direction(9, 9)},
               other=Direction(10, 20), labelled=("/usr/bin/curl",))
    families = parsed(render(build(c)))
    sent = {s.labels["exe"]: s.value for s in families["netwarden_executable_sent_bytes"].samples}
    recv = {s.labels["exe"]: s.value
            for s in families["netwarden_executable_received_bytes"].samples}
    # An executable out of the top N has no series now: its bytes since went to "other".
    assert sent == {"/usr/bin/curl": 1234, OTHER: 10}
    assert recv == {"/usr/bin/curl": 5678, OTHER: 20}
    assert families["netwarden_executable_sent_bytes"].type == "counter"


def test_every_family_has_help_type_and_a_unit_or_total():
    c = counts(devices=DeviceCounts(3, 2), sink_levels={"behind_s": 42, "behind_rows": 7})
    c.health.update({("net", "flow_map_full"): 3, ("net", "flow_insert_failed"): 1,
                     ("exec", "proc_events_lost"): 2, ("sensor", "hook_failed:dns/x"): 1,
                     ("sensor", "recursion_misses:count_send"): 4,
                     ("sensor", "windows_dropped"): 5, ("net", "bytes_unattributed"): 99})
    text = render(build(c))
    families = parsed(text)
    for fam in families.values():
        assert fam.documentation, fam.name
        assert fam.type in ("counter", "gauge")
    drops = {(s.labels["source"], s.labels["reason"]): s.value
             for s in families["netwarden_sensor_flow_map_drops"].samples}
    assert drops == {("net", "full"): 3, ("net", "insert_failed"): 1}
    (ring,) = families["netwarden_sensor_ring_buffer_drops"].samples
    assert ring.labels == {"source": "exec", "ring": "proc"} and ring.value == 2
    (hook,) = families["netwarden_sensor_hook_failures"].samples
    assert hook.labels["hook"] == "dns/x"
    (other,) = families["netwarden_health"].samples
    assert other.labels == {"source": "sensor", "counter": "windows_dropped"}
    assert families["netwarden_sink_behind_seconds"].samples[0].value == 42
    assert families["netwarden_sink_behind_rows"].samples[0].value == 7
    assert families["netwarden_devices_present"].samples[0].value == 2
    assert families["netwarden_devices_recorded"].samples[0].value == 3
    assert "# TYPE netwarden_sink_behind_seconds gauge" in text
    assert "# TYPE netwarden_sensor_unattributed_bytes_total counter" in text


def test_no_device_metrics_without_discovery_tables():
    assert "netwarden_devices_present" not in render(build(counts(devices=None)))
