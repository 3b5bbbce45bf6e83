"""Fixtures several contract tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.http_recorder import Recorder


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """An HTTP server on loopback that records what a channel sends (webhook, ntfy)."""
    server = Recorder()
    yield server
    server.close()
