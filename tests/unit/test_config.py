from __future__ import annotations

from pathlib import Path

import pytest

from netwarden.config import Config, ConfigError, config_from_dict, load_config, with_db_path


def test_missing_default_file_means_defaults(tmp_path: Path):
    assert load_config(tmp_path / "absent.toml") == Config()


def test_missing_explicit_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml", required=True)


def test_valid_file(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text('[sensor]\nwrite_interval_s = 30\ndrain_interval_s = 2\n'
                    'hook_set = "tracepoint"\n[store]\npath = "/tmp/x.db"\n')
    config = load_config(path)
    assert config.sensor.write_interval_s == 30
    assert config.sensor.drain_interval_s == 2.0 and isinstance(config.sensor.drain_interval_s,
                                                                float)
    assert config.db_path == Path("/tmp/x.db")


@pytest.mark.parametrize("data, fragment", [
    ({"sensor": {"write_interval_s": 0}}, "[sensor] write_interval_s = 0: must be an integer "
                                          "from 1 to 3600"),
    ({"sensor": {"write_interval_s": "10"}}, "write_interval_s = '10': must be an integer"),
    ({"sensor": {"write_interval_s": True}}, "write_interval_s = True: must be an integer"),
    ({"sensor": {"track_packet_sockets": 1}}, "must be true or false"),
    ({"sensor": {"hook_set": "kprobe"}}, "must be one of 'auto', 'tracepoint', 'fexit'"),
    ({"sensor": {"proc_ringbuf_kib": 1000}}, "a power of two"),
    ({"sensor": {"writ_interval_s": 5}}, "[sensor] writ_interval_s = 5: unknown setting; "
                                         "known: write_interval_s"),
    ({"sensr": {}}, "[sensr] = '...': unknown section"),
    ({"sensor": 5}, "[sensor] = 5: must be a table"),
    ({"sensor": {"write_interval_s": 5, "drain_interval_s": 6}}, "must not exceed"),
    ({"view": {"units": "binary"}}, "[view] units = 'binary': must be one of 'iec', 'si'"),
])
def test_errors_name_key_value_and_allowed(data: dict, fragment: str):
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, "/etc/netwarden/config.toml")
    assert fragment in str(info.value)
    assert str(info.value).startswith("/etc/netwarden/config.toml: ")


def test_syntax_error(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text("[sensor\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_db_flag_wins():
    assert with_db_path(Config(), Path("/x.db")).db_path == Path("/x.db")
    assert with_db_path(Config(), None) == Config()


def test_the_shipped_example_lists_every_setting_with_its_default(tmp_path: Path):
    example = Path(__file__).resolve().parents[2] / "packaging" / "config.toml.example"
    uncommented = "\n".join(line.replace("# ", "", 1) if line.startswith("# ") and "=" in line
                            else line for line in example.read_text().splitlines())
    path = tmp_path / "c.toml"
    path.write_text(uncommented)
    assert load_config(path) == Config()
    from netwarden.config import describe_settings
    for line in describe_settings():
        key = line.split("]")[1].split("=")[0].strip()
        assert f"{key} =" in uncommented


def test_one_unit_setting_for_both_viewers():
    assert Config().view.units == "iec"
    assert config_from_dict({"view": {"units": "si"}}, "x").view.units == "si"
