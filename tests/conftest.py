"""Test-suite policy: where NETWARDEN_STRICT=1 (CI, and the README's test command), a skipped
test is a failed test. A privileged or service test that cannot run there has not passed."""

from __future__ import annotations

import os

import pytest

STRICT = os.environ.get("NETWARDEN_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped:
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under NETWARDEN_STRICT=1 (a skip is a failure here): {reason}"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
