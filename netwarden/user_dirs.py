"""A desktop user's own netwarden directories (the XDG base directories).

The notifier, the mute list and the fleet watcher keep a user's files there, never in the
system's directories: they run as that user. ``env`` is the environment to read (a dropped
user's session's, or a test's); the process's own by default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def _base(env: Mapping[str, str] | None, name: str, fallback: str) -> Path:
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(env.get(name) or os.path.join(home, fallback))


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/netwarden`` (``~/.config/netwarden``)."""
    return _base(env, "XDG_CONFIG_HOME", ".config") / "netwarden"


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/netwarden`` (``~/.local/state/netwarden``)."""
    return _base(env, "XDG_STATE_HOME", ".local/state") / "netwarden"
