"""Running an HTTP server in the foreground until Ctrl-C (the web viewer, the exporter)."""

from __future__ import annotations

import sys
from typing import Any


def serve_until_interrupted(server: Any, announce: str) -> None:
    """Print ``announce`` on stderr, serve until Ctrl-C (or the stopper's KeyboardInterrupt),
    then close the listening socket."""
    print(announce, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
