"""Choosing and validating where a pass looks (pure: a LinkState fixture, no netlink)."""

from __future__ import annotations

import ipaddress

import pytest

from netwarden.discovery.errors import (
    InvalidSubnet, NoInterface, NoSuchInterface, SubnetNotOnInterface, SubnetTooLarge,
)
from netwarden.discovery.target import InterfaceInfo, LinkState, choose_target

ETH0 = InterfaceInfo("eth0", 2, "52:54:00:12:34:56",
                     (ipaddress.IPv4Interface("10.78.0.2/24"),
                      ipaddress.IPv4Interface("10.78.8.2/20")),
                     (ipaddress.IPv6Interface("fe80::1/64"),))
LO = InterfaceInfo("lo", 1, "00:00:00:00:00:00", (ipaddress.IPv4Interface("127.0.0.1/8"),), ())
STATE = LinkState((LO, ETH0), "eth0")


def test_default_interface_and_its_subnets():
    target = choose_target(STATE, None, [], max_size=4096)
    assert target.interface == "eth0" and target.ifindex == 2
    assert [str(s) for s in target.subnets] == ["10.78.0.0/24", "10.78.0.0/20"]


def test_explicit_subnet_inside_the_interface():
    target = choose_target(STATE, "eth0", ["10.78.0.128/25"], max_size=256)
    assert [str(s) for s in target.subnets] == ["10.78.0.128/25"]
    # Own address excluded; hosts only.
    assert len(target.sweep_addresses()) == 126


def test_sweep_skips_own_address():
    target = choose_target(STATE, "eth0", ["10.78.0.0/24"], max_size=256)
    addresses = {str(a) for a in target.sweep_addresses()}
    assert "10.78.0.2" not in addresses and len(addresses) == 253


@pytest.mark.parametrize("subnet, error, fragment", [
    ("10.78.0.300/24", InvalidSubnet, "'10.78.0.300/24' is not a valid CIDR subnet"),
    ("banana", InvalidSubnet, "not a valid CIDR"),
    ("10.78.0.0", InvalidSubnet, "give a prefix length"),
    ("fd78::/64", InvalidSubnet, "only IPv4 subnets"),
    ("10.0.0.0/8", SubnetTooLarge, "10.0.0.0/8 has 16777216 addresses, more than the limit "
                                   "of 1024"),
    ("10.99.0.0/24", SubnetNotOnInterface, "not on eth0 (its networks: 10.78.0.0/24, "
                                           "10.78.0.0/20)"),
])
def test_bad_subnets_are_named(subnet: str, error: type, fragment: str):
    with pytest.raises(error) as info:
        choose_target(STATE, "eth0", [subnet], max_size=1024)
    assert fragment in str(info.value)


def test_oversized_own_subnet_is_refused_without_subnet_flag():
    with pytest.raises(SubnetTooLarge, match="10.78.0.0/20 has 4096 addresses"):
        choose_target(STATE, "eth0", [], max_size=1024)


def test_missing_interface():
    with pytest.raises(NoSuchInterface, match="no interface named 'wlan9' .this host has: "
                                              "lo, eth0."):
        choose_target(STATE, "wlan9", [], max_size=1024)


def test_loopback_is_refused():
    with pytest.raises(NoSuchInterface, match="no link-layer address"):
        choose_target(STATE, "lo", [], max_size=1024)


def test_no_default_route():
    with pytest.raises(NoInterface, match="--interface"):
        choose_target(LinkState((LO, ETH0), None), None, [], max_size=1024)


def test_in_scope():
    target = choose_target(STATE, "eth0", ["10.78.0.0/24"], max_size=256)
    assert target.in_scope("10.78.0.9") and not target.in_scope("10.78.1.9")
    assert target.in_scope("fe80::abcd") and not target.in_scope("2001:db8::1")
    assert not target.in_scope("not-an-ip")
