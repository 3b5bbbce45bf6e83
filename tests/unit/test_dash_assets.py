"""The vendored plotly.js basic bundle matches the plotly.js the pinned plotly package ships."""

from __future__ import annotations

import re
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "netwarden" / "viewer_dash" / "assets"


def test_basic_bundle_is_the_same_plotly_js_release_line():
    from plotly.offline import get_plotlyjs_version
    head = (ASSETS / "plotly-basic.min.js").read_text(encoding="utf-8")[:300]
    found = re.search(r"plotly\.js \(basic - minified\) v(\d+)\.(\d+)\.\d+", head)
    assert found, head
    assert found.groups() == tuple(get_plotlyjs_version().split(".")[:2])
    assert (ASSETS / "plotly-basic.LICENSE.txt").read_text().startswith("MIT License")
