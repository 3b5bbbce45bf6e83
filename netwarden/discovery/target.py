"""Where a pass looks: the interface (named, or the default route's) and its IPv4 subnets.

Reading the interfaces is one netlink dump (pyroute2); choosing and validating is pure, so bad
input (an invalid CIDR, an oversized subnet, a missing interface, a subnet that is not on the
link) is tested without a network. Discovery only ever scans the local link: a subnet must lie
inside one of the interface's own networks, so no probe is routed off the link.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from netwarden.discovery.errors import (
    InvalidSubnet, NoInterface, NoSuchInterface, SubnetNotOnInterface, SubnetTooLarge,
)
from netwarden.model.discovery import ScanTarget


@dataclass(frozen=True)
class InterfaceInfo:
    name: str
    index: int
    mac: str
    v4: tuple[ipaddress.IPv4Interface, ...]
    v6: tuple[ipaddress.IPv6Interface, ...]


@dataclass(frozen=True)
class LinkState:
    """The interfaces of this network namespace and the one the default route leaves by."""

    interfaces: tuple[InterfaceInfo, ...]
    default_interface: str | None


def read_link_state() -> LinkState:
    """One netlink dump of links, addresses and the IPv4 default route (unprivileged)."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        links = {link["index"]: (link.get_attr("IFLA_IFNAME"),
                                 link.get_attr("IFLA_ADDRESS") or "")
                 for link in ipr.get_links()}
        v4: dict[int, list[ipaddress.IPv4Interface]] = {i: [] for i in links}
        v6: dict[int, list[ipaddress.IPv6Interface]] = {i: [] for i in links}
        for addr in ipr.get_addr():
            text = addr.get_attr("IFA_LOCAL") or addr.get_attr("IFA_ADDRESS")
            if not text or addr["index"] not in links:
                continue
            iface = ipaddress.ip_interface(f"{text}/{addr['prefixlen']}")
            family = v4 if iface.version == 4 else v6
            family[addr["index"]].append(iface)  # type: ignore[arg-type]
        default = None
        for route in ipr.get_default_routes(family=2):
            oif = route.get_attr("RTA_OIF")
            if oif in links:
                default = links[oif][0]
                break
    infos = tuple(InterfaceInfo(name, index, mac, tuple(v4[index]), tuple(v6[index]))
                  for index, (name, mac) in sorted(links.items()))
    return LinkState(infos, default)


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise InvalidSubnet(f"{text!r} is not a valid CIDR subnet (like 192.168.1.0/24)") \
            from None
    if "/" not in text:
        raise InvalidSubnet(f"{text!r} is not a CIDR subnet: give a prefix length "
                            f"(like {network.network_address}/24)")
    if network.version != 4:
        raise InvalidSubnet(f"{text}: only IPv4 subnets can be swept; IPv6 neighbours are "
                            "found from the neighbour table and an all-nodes echo")
    return network  # type: ignore[return-value]


def check_size(subnet: ipaddress.IPv4Network, max_size: int) -> None:
    if subnet.num_addresses > max_size:
        raise SubnetTooLarge(
            f"subnet {subnet} has {subnet.num_addresses} addresses, more than the "
            f"limit of {max_size} ([discovery] max_subnet_size); pass a smaller --subnet")


def choose_target(state: LinkState, interface: str | None, subnets: Sequence[str],
                  max_size: int) -> ScanTarget:
    """Validate the request against the interfaces; raises a DiscoveryInputError subclass."""
    parsed = [parse_subnet(s) for s in subnets]   # bad syntax first, whatever the interface
    for subnet in parsed:
        check_size(subnet, max_size)
    if interface is None:
        if state.default_interface is None:
            raise NoInterface("no --interface given and no default route to pick one from; "
                              "name the interface to scan with --interface")
        interface = state.default_interface
    info = next((i for i in state.interfaces if i.name == interface), None)
    if info is None:
        known = ", ".join(i.name for i in state.interfaces)
        raise NoSuchInterface(f"no interface named {interface!r} (this host has: {known})")
    if info.name == "lo" or not info.mac or info.mac == "00:00:00:00:00:00":
        raise NoSuchInterface(f"interface {interface!r} has no link-layer address to scan "
                              "from (loopback or a tunnel)")
    own_nets = [a.network for a in info.v4]
    if not parsed:
        if not own_nets:
            raise SubnetNotOnInterface(f"interface {interface!r} has no IPv4 address; "
                                       "give a --subnet or configure an address")
        parsed = list(dict.fromkeys(own_nets))
        for subnet in parsed:
            check_size(subnet, max_size)
    for subnet in parsed:
        if not any(subnet.subnet_of(net) for net in own_nets):  # type: ignore[arg-type]
            nets = ", ".join(str(n) for n in own_nets) or "none"
            raise SubnetNotOnInterface(
                f"subnet {subnet} is not on {interface} (its networks: {nets}); discovery "
                "scans only the local link")
    return ScanTarget(interface=info.name, ifindex=info.index, mac=info.mac.lower(),
                      own_v4=info.v4, own_v6=info.v6, subnets=tuple(parsed))
