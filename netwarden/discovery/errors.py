"""LAN discovery's errors: bad input from the user, and a method that cannot run here."""

from __future__ import annotations


class DiscoveryInputError(ValueError):
    """Bad input from the user (flag or config): the message names the problem."""


class InvalidSubnet(DiscoveryInputError):
    pass


class SubnetTooLarge(DiscoveryInputError):
    pass


class NoSuchInterface(DiscoveryInputError):
    pass


class SubnetNotOnInterface(DiscoveryInputError):
    pass


class NoInterface(DiscoveryInputError):
    """No interface was named and none could be chosen (no default route)."""


class MethodUnavailable(Exception):
    """A method cannot run here (a missing capability, no address); the message says why."""
