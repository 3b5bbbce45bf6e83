from __future__ import annotations

import dataclasses

import pytest

from netwarden.config import IgnoreConfig
from netwarden.model import Executable, FlowRow, ProgramIdentity
from netwarden.sensor.ignore import IgnoreRules

SHA = "ab" * 32
ROW = FlowRow(time=0, program=ProgramIdentity(Executable("/usr/bin/curl", SHA), "curl", "", 0),
              family=2, protocol="tcp", ip_protocol=6, laddr="10.0.0.2", lport=40000,
              raddr="93.184.216.34", rport=443, sent=1, recv=1, domain="www.example.com")


@pytest.mark.parametrize("config, ignored", [
    (IgnoreConfig(), False),
    (IgnoreConfig(executables=("/usr/bin/curl",)), True),
    (IgnoreConfig(executables=("/usr/bin/wget",)), False),
    (IgnoreConfig(executables=(SHA,)), True),
    (IgnoreConfig(domains=("example.com",)), True),
    (IgnoreConfig(domains=("www.example.com.",)), True),
    (IgnoreConfig(domains=("ample.com",)), False),          # a suffix on a label boundary
    (IgnoreConfig(subnets=("93.184.216.0/24",)), True),
    (IgnoreConfig(subnets=("fd00::/8", "10.9.0.0/16")), False),
    (IgnoreConfig(ports=(443,)), True),
    (IgnoreConfig(ports=(40000,)), True),                   # local ports count too
    (IgnoreConfig(ports=(80,)), False),
])
def test_rules(config: IgnoreConfig, ignored: bool):
    rules = IgnoreRules.from_config(config)
    assert rules.matches(ROW) is ignored
    assert bool(rules) is (config != IgnoreConfig())


def test_unknown_domain_never_matches():
    rules = IgnoreRules.from_config(IgnoreConfig(domains=("example.com",)))
    assert not rules.matches(dataclasses.replace(ROW, domain=""))
