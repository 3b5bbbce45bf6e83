"""`netwarden report` on a seeded store: the figures a user would check (totals, the top program,
a new program, a new device, a sensor error, a health counter), in Markdown and HTML; the HTML
parses and escapes what it prints; bad input exits 64."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from netwarden.model import Event, EventKind, Executable, HealthSample, ProgramIdentity
from netwarden.notify.delivery import RetryPolicy
from netwarden.notify.http_channels import NtfyChannel, WebhookChannel
from netwarden.report_schedule import WEEKDAYS
from netwarden.store.sqlite_writer import SqliteWriter
from netwarden.view.units import format_bytes
from tests.support.device_data import HUE, PHONE, PI, seed_devices
from tests.support.http_recorder import Recorded, Recorder
from tests.support.notifier_run import RunningNotifier, config
from tests.support.sensor_proc import netwarden
from tests.support.viewer_data import BASH, flow, seed_store
from tests.support.watch_data import seed_watch

REPO = Path(__file__).resolve().parents[2]
NOW = 1_796_600_000
DAY = 86400
#: A path a browser would take for markup if the report did not escape it.
ODD = ProgramIdentity(Executable("/opt/<b>odd</b>&co/tool", "e" * 64), "tool", "tool", 1000,
                      parent=BASH)
ODD_SENT, ODD_RECV = 5, 7
# seed_store's flows: (sent, recv) in the last day, and the older ones (apt, the old curl).
DAY_SENT = 20000 + 1000 + 60 + 30000 + 700000 + 400000 + ODD_SENT
DAY_RECV = 1_000_000 + 50000 + 120 + 2_000_000 + 9000 + 30000 + ODD_RECV
WEEK_SENT, WEEK_RECV = DAY_SENT + 300 + 2000, DAY_RECV + 4000 + 9_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("report")
    db = tmp / "nw.db"
    seed_store(db, NOW)
    seed_devices(db, NOW)
    seed_watch(db, NOW)
    writer = SqliteWriter(db, NOW, group=None, host="testhost")
    writer.write([flow(NOW - 200, ODD, "192.0.2.10", 443, ODD_SENT, ODD_RECV)], [
        Event.of(NOW - 500, EventKind.SENSOR_ERROR, component="sensor", state="unclean_stop",
                 message="killed", required=False, missing_from=NOW - 560, missing_to=NOW - 500),
        # one long scan, reported twice as it went on: one line with its latest totals
        *[Event.of(NOW - 7000 + 3600 * (report - 1), EventKind.PORT_SCAN, **_scan(report))
          for report in (1, 2)],
    ], [HealthSample(NOW - 400, "sensor", "proc_events_lost", 3),
        HealthSample(NOW - 10 * DAY, "sensor", "proc_events_lost", 100)], NOW - 200)
    writer.close()
    config = tmp / "c.toml"
    config.write_text("[store]\ngroup = \"\"\nowner = \"\"\n")
    return db, config


def _scan(report: int) -> dict[str, object]:
    return {"source": "203.0.113.66", "ports": 300 * report, "sample": [21, 22, 23],
            "protocols": ["tcp"], "probe": "syn", "probes": {"syn": 300 * report},
            "first": NOW - 7300, "last": NOW - 7000 + 3600 * (report - 1),
            "duration_s": 300 + 3600 * (report - 1), "targets": ["192.0.2.1"],
            "state": "ongoing" if report == 1 else "ended", "report": report}


def report(store: tuple[Path, Path], *args: str) -> subprocess.CompletedProcess[str]:
    db, config = store
    return subprocess.run([sys.executable, "-m", "netwarden", "report", "--db", str(db),
                           "--config", str(config), "--until", str(NOW), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_markdown_day_holds_the_seeded_figures(store: tuple[Path, Path]) -> None:
    done = report(store, "--period", "day")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert (f"Sent {format_bytes(DAY_SENT)}, received {format_bytes(DAY_RECV)}, "
            f"total {format_bytes(DAY_SENT + DAY_RECV)}") in text
    programs = text.split("## Top programs")[1].split("##")[0]
    first_row = [line for line in programs.splitlines() if line.startswith("| /")][0]
    # firefox: 50,000 sent and 3,000,000 received in the last day, the most of any program
    assert first_row == (f"| /usr/lib/firefox/firefox | {format_bytes(50000)} | "
                         f"{format_bytes(3_000_000)} | {format_bytes(3_050_000)} |")
    assert "/usr/bin/apt" not in programs          # two days old: not in a day's report
    destinations = text.split("## Top destinations")[1].split("##")[0]
    assert "| www.google.com |" in destinations and "| 203.0.113.9 |" in destinations
    new = text.split("## New programs")[1].split("##")[0]
    assert "| /usr/sbin/nginx | nginx, uid 33," in new
    assert "| /opt/\\<b>odd\\</b>&co/tool | tool, uid 1000," in new   # no raw HTML
    assert "/usr/bin/apt" not in new
    devices = text.split("## New LAN devices")[1].split("##")[0]
    assert PHONE in devices and PI in devices and HUE in devices
    assert "| sensor | unclean_stop | 1 |" in text
    # the counter moved 3 in the day; the 100 ten days earlier is outside the period
    assert "| sensor | proc_events_lost | 3 |" in text
    scans = text.split("## Scans seen")[1].split("##")[0]
    assert [line for line in scans.splitlines() if line.startswith("| 2")] == [
        f"| {_minute(NOW - 7300)} | 203.0.113.66 | 600 ports, syn, over 1 h 5 min, ended |"]
    outages = text.split("## Outages")[1]
    # from the watch's windows: gw down 10 min; web twice 5 min (one 2.5 h ago: still in the
    # day); the internet group once, while both its members were down
    assert "| gw | icmp:192.0.2.1 | 1 | 10 min 0 s | 10 min 0 s |" in outages
    assert "| web | tcp:192.0.2.80:443 | 2 | 10 min 0 s | 5 min 0 s |" in outages
    assert "| internet (group) | group | 1 | 5 min 0 s | 5 min 0 s |" in outages


def test_markdown_week_counts_older_traffic_and_the_modified_exe(
        store: tuple[Path, Path]) -> None:
    done = report(store, "--period", "week", "--top", "1")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert f"Sent {format_bytes(WEEK_SENT)}, received {format_bytes(WEEK_RECV)}" in text
    programs = text.split("## Top programs")[1].split("##")[0]
    assert [line.split(" | ")[0] for line in programs.splitlines()
            if line.startswith("| /")] == ["| /usr/bin/apt"]
    modified = text.split("## Modified executables")[1].split("##")[0]
    assert "| /usr/bin/curl | sha256 000000000000 -> cccccccccccc |" in modified
    assert "| /usr/bin/apt | apt, uid 0," in text


class _Checker(HTMLParser):
    """Fails on a closing tag that does not match the open one; keeps the text."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_well_formed_self_contained_and_escaped(store: tuple[Path, Path]) -> None:
    done = report(store, "--period", "day", "--format", "html")
    assert done.returncode == 0, done.stderr
    page = done.stdout
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    text = "".join(checker.text)
    assert ODD.exe.path in text                     # shown as text ...
    assert "<b>odd</b>" not in page                 # ... never as markup
    assert "b" not in checker.tags
    assert f"Sent {format_bytes(DAY_SENT)}, received {format_bytes(DAY_RECV)}" in text
    assert "/usr/lib/firefox/firefox" in text and PHONE in text and "unclean_stop" in text
    # self-contained: no scripts, no stylesheets or images fetched from anywhere
    assert not checker.tags & {"script", "link", "img", "iframe"}
    assert "http://" not in page and "https://" not in page


@pytest.mark.parametrize("args, named", [
    (("--period", "year"), "--period"),
    (("--period", "day", "--until", "last tuesday"), "--until"),
    (("--period", "day", "--until", "-5"), "--until"),
])
def test_bad_input_is_one_line_and_exit_64(store: tuple[Path, Path], args: tuple[str, ...],
                                           named: str) -> None:
    db, config = store
    done = subprocess.run([sys.executable, "-m", "netwarden", "report", "--db", str(db),
                           "--config", str(config), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 64
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0]


def test_iso_until_and_a_missing_store(store: tuple[Path, Path], tmp_path: Path) -> None:
    from datetime import datetime, timezone
    iso = datetime.fromtimestamp(NOW, timezone.utc).isoformat()
    by_epoch = report(store, "--period", "day")
    assert by_epoch.returncode == 0, by_epoch.stderr
    assert report(store, "--period", "day", "--until", iso).stdout == by_epoch.stdout
    done = subprocess.run([sys.executable, "-m", "netwarden", "report", "--period", "day",
                           "--db", str(tmp_path / "none.db"), "--config", str(store[1])],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 74 and "no database at" in done.stderr


def test_html_renders_in_headless_chromium(store: tuple[Path, Path], tmp_path: Path) -> None:
    """The page as a person opens it from disk: its tables drawn, the odd path shown as text,
    nothing fetched. With NETWARDEN_SCREENSHOTS=DIR the whole page is saved as report.png."""
    import os

    from selenium.webdriver.common.by import By

    from tests.support.browser import chromium
    done = report(store, "--period", "day", "--format", "html")
    assert done.returncode == 0, done.stderr
    page = tmp_path / "report.html"
    page.write_text(done.stdout)
    with chromium(1000, 900) as driver:
        driver.get(page.as_uri())
        assert driver.title == "netwarden report: day"
        headings = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
        assert headings[:2] == ["Top programs", "Top destinations"]
        assert "Outages" in headings and "Scans seen" in headings
        first = driver.find_element(By.CSS_SELECTOR, "table tbody tr td").text
        assert first == "/usr/lib/firefox/firefox"
        cells = [td.text for td in driver.find_elements(By.TAG_NAME, "td")]
        assert ODD.exe.path in cells
        assert driver.find_elements(By.TAG_NAME, "b") == []
        # styled by its own <style> (the right-aligned byte columns), and nothing loaded
        assert driver.execute_script(
            "return getComputedStyle(document.querySelector('td.n')).textAlign") == "right"
        assert driver.execute_script(
            "return performance.getEntriesByType('resource').length") == 0
        target = os.environ.get("NETWARDEN_SCREENSHOTS")
        if target:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1000, int(height) + 160)
            driver.save_screenshot(str(Path(target) / "report.png"))


class _Clock:
    """The notifier's clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _minute(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(epoch))


def _seconds(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _reports(recorder: Recorder) -> list[Recorded]:
    """The report's requests (the seeded events are notified too, first_run = "all")."""
    return [r for r in list(recorder.requests)
            if r.headers.get("Title", "").startswith("netwarden report")
            or r.path == "/hook" and '"kind": "report"' in r.body.decode()]


def _wait_reports(recorder: Recorder, count: int) -> list[Recorded]:
    deadline = time.time() + 15
    while time.time() < deadline and len(_reports(recorder)) < count:
        time.sleep(0.05)
    return _reports(recorder)


def _weekly_due_at(epoch: float) -> tuple[float, dict[str, object]]:
    """A weekly schedule due at the minute ``epoch`` falls in, local time, and its settings."""
    local = datetime.datetime.fromtimestamp(epoch)
    due = local.replace(second=0, microsecond=0)
    return due.timestamp(), {"report_period": "week", "report_at": due.strftime("%H:%M"),
                             "report_weekday": WEEKDAYS[due.weekday()],
                             "report_channels": ["webhook", "ntfy"]}


def test_the_notifier_sends_the_weekly_report_on_its_schedule(
        store: tuple[Path, Path], tmp_path: Path) -> None:
    """Nothing before the due time; then one report on each channel, the same Markdown as
    `netwarden report --period week`; nothing more that week; after three weeks stopped, one
    report, of the newest missed week."""
    db, _config = store
    shutil.copy(db, tmp_path / "netwarden.db")
    due, settings = _weekly_due_at(NOW)
    assert NOW - 100 < due <= NOW    # the newest seeded flow is at NOW - 100: same figures
    clock = _Clock(due - 3600)
    recorder = Recorder()
    channels = [WebhookChannel(recorder.url + "/hook", "", "testhost", 2.0, RetryPolicy(2, .1)),
                NtfyChannel(recorder.url + "/topic", "", 2.0, RetryPolicy(2, 0.1))]
    try:
        with RunningNotifier(config(desktop=False, **settings), tmp_path, channels,
                             clock=clock) as running:
            time.sleep(1.0)
            assert _reports(recorder) == []
            assert float(running.state().meta("report_next") or 0) == due
            clock.now = due + 5
            hook, push = sorted(_wait_reports(recorder, 2), key=lambda r: r.path)
            clock.now = due + 3 * DAY
            time.sleep(1.0)
            assert len(_reports(recorder)) == 2
        status = netwarden("notifier", "--status", "--state", str(tmp_path / "state.db"))
        weekday = WEEKDAYS[datetime.datetime.fromtimestamp(due).weekday()].capitalize()
        assert (f"report: weekly on {weekday} at {settings['report_at']}; next "
                f"{_seconds(due + 7 * DAY)}, last {_seconds(due)}") in status.stdout
        # NOW and due are in the same minute, the report's resolution: the same text
        expected = report(store, "--period", "week").stdout
        record = hook.json()
        assert isinstance(record, dict) and record["kind"] == "report"
        assert record["title"] == "netwarden report: week"
        assert record["fields"]["markdown"] == expected.replace(str(db), str(tmp_path /
                                                                          "netwarden.db"))
        assert (record["fields"]["sent"], record["fields"]["recv"]) == (WEEK_SENT, WEEK_RECV)
        assert record["fields"]["until"] == due
        assert (f"Sent {format_bytes(WEEK_SENT)}, received {format_bytes(WEEK_RECV)}"
                in record["body"])
        assert "Top program: /usr/bin/apt" in record["body"]
        assert "new programs" in record["body"] and "1 changed program" in record["body"]
        assert push.headers["Markdown"] == "yes"
        assert push.body.decode() == record["fields"]["markdown"]

        clock.now = due + 3 * 7 * DAY + 600      # stopped for three weeks
        with RunningNotifier(config(desktop=False, **settings), tmp_path, channels,
                             clock=clock):
            _wait_reports(recorder, 4)
            time.sleep(1.0)
        assert len(_reports(recorder)) == 4
        late = [r.json() for r in _reports(recorder)[2:] if r.path == "/hook"][0]
        assert isinstance(late, dict) and late["fields"]["until"] == due + 3 * 7 * DAY
    finally:
        recorder.close()
