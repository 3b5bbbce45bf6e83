"""Where the notifier, running as the desktop user, finds its settings, state and secrets.

Settings come from two TOML files: the system file (``/etc/netwarden/config.toml``, or
``--config``), then the user's file (``$XDG_CONFIG_HOME/netwarden/config.toml``, i.e.
``~/.config/netwarden/config.toml``, or ``--user-config``), whose keys win. The user file may
only hold the notifier's sections (and ``[store] path``): the sensor's settings are the
administrator's. Secrets (webhook key, MQTT password, ntfy token, VirusTotal key) belong in the
user's file or in a ``*_file`` the user alone can read.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from netwarden.config import (
    DEFAULT_CONFIG_PATH, Config, ConfigError, config_from_dict, read_secret_file, read_toml,
)
from netwarden.user_dirs import config_dir, state_dir

#: Sections a user's own file may set.
USER_SECTIONS = ("notifier", "webhook", "mqtt", "ntfy", "virustotal")


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / "config.toml"


def state_path(env: Mapping[str, str] | None = None) -> Path:
    return state_dir(env) / "notifier.db"


def _check_user_file(path: Path, data: dict[str, object]) -> None:
    for section, values in data.items():
        if section == "store" and isinstance(values, dict) and set(values) <= {"path"}:
            continue
        if section not in USER_SECTIONS:
            raise ConfigError(str(path), f"[{section}]", "...",
                              "not allowed in a user's file; allowed: "
                              + ", ".join(USER_SECTIONS) + " and [store] path")


def load_notifier_config(system: Path | None, user: Path | None,
                         env: Mapping[str, str] | None = None) -> Config:
    """The merged, validated settings. An explicitly named file must exist."""
    system_data = read_toml(system or DEFAULT_CONFIG_PATH, system is not None, "--config")
    user_file = user or user_config_path(env)
    user_data = read_toml(user_file, user is not None, "--user-config")
    _check_user_file(user_file, user_data)
    merged: dict[str, object] = dict(system_data)
    for section, values in user_data.items():
        base = merged.get(section, {})
        if isinstance(base, dict) and isinstance(values, dict):
            merged[section] = {**base, **values}
        else:
            merged[section] = values
    source = f"{system or DEFAULT_CONFIG_PATH} + {user_file}" if user_data else \
        str(system or DEFAULT_CONFIG_PATH)
    config = config_from_dict(merged, source)
    _check_urls(config, source)
    return config


def _check_url(source: str, key: str, url: str) -> None:
    if not url:
        return
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(source, key, url, "must be an http:// or https:// URL")


def _check_urls(config: Config, source: str) -> None:
    _check_url(source, "[webhook] url", config.webhook.url)
    _check_url(source, "[ntfy] url", config.ntfy.url)
    _check_url(source, "[virustotal] base_url", config.virustotal.base_url)
    if config.virustotal.enabled and not (config.virustotal.api_key
                                          or config.virustotal.api_key_file):
        raise ConfigError(source, "[virustotal] enabled", True,
                          "needs api_key or api_key_file")


def secret(section: str, value: str, file_key: str, file_path: str) -> str:
    """A secret given inline or in a file (the file's content, surrounding space removed)."""
    if not file_path:
        return value
    return read_secret_file(f"[{section}] {file_key}", file_path)


@dataclass(frozen=True)
class Secrets:
    webhook: str
    mqtt_password: str
    ntfy_token: str
    virustotal_key: str


def read_secrets(config: Config) -> Secrets:
    return Secrets(
        webhook=secret("webhook", config.webhook.secret, "secret_file",
                       config.webhook.secret_file),
        mqtt_password=secret("mqtt", config.mqtt.password, "password_file",
                             config.mqtt.password_file),
        ntfy_token=secret("ntfy", config.ntfy.token, "token_file", config.ntfy.token_file),
        virustotal_key=secret("virustotal", config.virustotal.api_key, "api_key_file",
                              config.virustotal.api_key_file))
