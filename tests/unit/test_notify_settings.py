"""The notifier's settings: system file, user file on top, secrets from files, checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwarden.config import Config, ConfigError, config_from_dict
from netwarden.notify.settings import (
    load_notifier_config, read_secrets, state_path, user_config_path,
)


def empty(directory: Path) -> Path:
    """An empty system config file (the real /etc one is not the test's business)."""
    path = directory / "system.toml"
    path.write_text("")
    return path


def test_lists_of_strings():
    config = config_from_dict({"notifier": {"mute_programs": ["/usr/bin/curl"],
                                            "mute_kinds": ["new_device"]}})
    assert config.notifier.mute_programs == ("/usr/bin/curl",)
    with pytest.raises(ConfigError, match=r"\[notifier\] mute_kinds = 'new_device': must be a "
                                          "list of non-empty strings"):
        config_from_dict({"notifier": {"mute_kinds": "new_device"}})
    with pytest.raises(ConfigError, match="max_per_window = 1: must be an integer from 2"):
        config_from_dict({"notifier": {"max_per_window": 1}})


def test_user_file_wins_key_by_key(tmp_path: Path):
    system, user = tmp_path / "system.toml", tmp_path / "user.toml"
    system.write_text('[notifier]\ncooldown_s = 60\nwindow_s = 30\n[sensor]\n'
                      'write_interval_s = 5\n')
    user.write_text('[notifier]\ncooldown_s = 10\n[webhook]\nurl = "http://127.0.0.1:5499/x"\n'
                    '[store]\npath = "/tmp/other.db"\n')
    config = load_notifier_config(system, user)
    assert (config.notifier.cooldown_s, config.notifier.window_s) == (10.0, 30.0)
    assert config.sensor.write_interval_s == 5
    assert config.webhook.url == "http://127.0.0.1:5499/x"
    assert config.db_path == Path("/tmp/other.db")


def test_user_file_may_not_set_the_sensor(tmp_path: Path):
    user = tmp_path / "user.toml"
    user.write_text("[sensor]\nwrite_interval_s = 1\n")
    with pytest.raises(ConfigError, match=r"\[sensor\] = '...': not allowed in a user's file"):
        load_notifier_config(empty(tmp_path), user)


def test_missing_user_file_means_defaults_but_named_files_must_exist(tmp_path: Path):
    env = {"HOME": str(tmp_path)}                  # no ~/.config/netwarden/config.toml
    assert load_notifier_config(empty(tmp_path), None, env) == Config()
    with pytest.raises(ConfigError, match="--user-config = '.*': no such file"):
        load_notifier_config(empty(tmp_path), tmp_path / "absent.toml", env)
    with pytest.raises(ConfigError, match="--config = '.*': no such file"):
        load_notifier_config(tmp_path / "absent.toml", None, env)


@pytest.mark.parametrize("section, key, value", [
    ("webhook", "url", "ftp://example.invalid/x"),
    ("ntfy", "url", "localhost:5400/topic"),
    ("virustotal", "base_url", "file:///etc/passwd"),
])
def test_urls_are_checked(tmp_path: Path, section: str, key: str, value: str):
    user = tmp_path / "user.toml"
    user.write_text(f'[{section}]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError, match="must be an http:// or https:// URL"):
        load_notifier_config(empty(tmp_path), user)


def test_virustotal_needs_a_key(tmp_path: Path):
    user = tmp_path / "user.toml"
    user.write_text("[virustotal]\nenabled = true\n")
    with pytest.raises(ConfigError, match="needs api_key or api_key_file"):
        load_notifier_config(empty(tmp_path), user)


def test_secrets_from_files(tmp_path: Path):
    (tmp_path / "key").write_text("s3cret\n")
    config = config_from_dict({"webhook": {"secret_file": str(tmp_path / "key")},
                               "virustotal": {"api_key": "inline"}})
    secrets = read_secrets(config)
    assert (secrets.webhook, secrets.virustotal_key) == ("s3cret", "inline")
    broken = config_from_dict({"ntfy": {"token_file": str(tmp_path / "absent")}})
    with pytest.raises(ConfigError, match=r"\[ntfy\] token_file = .*cannot be read"):
        read_secrets(broken)


def test_xdg_paths():
    assert user_config_path({"XDG_CONFIG_HOME": "/c"}) == Path("/c/netwarden/config.toml")
    assert state_path({"HOME": "/home/u"}) == Path("/home/u/.local/state/netwarden/notifier.db")
    assert state_path({"XDG_STATE_HOME": "/s"}) == Path("/s/netwarden/notifier.db")
