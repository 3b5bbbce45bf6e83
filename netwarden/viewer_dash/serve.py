"""Run the web viewer: bind (refusing beyond loopback without a token), then serve."""

from __future__ import annotations

import logging

from netwarden.serving import serve_until_interrupted
from netwarden.viewer_dash.app import DashSettings, create_app


class BindError(OSError):
    """The address cannot be listened on (in use, not ours, bad name)."""


def serve(settings: DashSettings, host: str, port: int) -> None:
    """Serve until interrupted. Raises BindError when the address cannot be had."""
    from werkzeug.serving import make_server
    app = create_app(settings)
    try:
        server = make_server(host, port, app.server, threaded=True)
    except (OSError, SystemExit) as exc:
        # werkzeug exits on an address in use after printing; say it our way instead.
        detail = getattr(exc, "strerror", None) or "address in use or not available"
        raise BindError(f"cannot listen on {host}:{port}: {detail}") from None
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    shown = f"[{host}]" if ":" in host else host
    serve_until_interrupted(server, f"netwarden dash: serving http://{shown}:{server.port}/ "
                                    f"(reading {settings.label}; Ctrl-C stops)")
