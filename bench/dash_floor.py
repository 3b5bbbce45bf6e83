#!/usr/bin/env python3
"""The floor of the Dash first-chart benchmark: a page with one dcc.Graph and nothing else.

It loads what every Dash page loads (React, the renderer, the component bundles) and the same
plotly.js bundle as netwarden's page (its assets folder), with a stacked chart of the same
shape (10 series of 60 points). No Dash page can draw its first chart faster than this one on
the same machine and browser, so bench/viewers_first_screen.py measures it side by side.

    python3 bench/dash_floor.py PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "netwarden" / "viewer_dash" / "assets"


def create_floor_app():   # -> dash.Dash
    import dash
    from dash import dcc, html
    app = dash.Dash(__name__, serve_locally=True, assets_folder=str(ASSETS))
    figure = {"data": [{"type": "scatter", "mode": "lines", "stackgroup": "bytes",
                        "name": f"series {k}", "x": list(range(60)),
                        "y": [(i * (k + 3)) % 17 for i in range(60)]} for k in range(10)],
              "layout": {"title": {"text": "floor"}}}
    app.layout = html.Div([dcc.Graph(id="traffic-chart", figure=figure)])
    return app


if __name__ == "__main__":
    import logging

    from werkzeug.serving import make_server
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", int(sys.argv[1]), create_floor_app().server,
                         threaded=True)
    print("serving", flush=True)
    server.serve_forever()
