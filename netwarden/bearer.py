"""The bearer-token rule every netwarden HTTP server follows (the web viewer, its JSON API
and /metrics, and the standalone metrics exporter): loopback may go without a token, anything
beyond it needs one, and a configured token must be presented."""

from __future__ import annotations

import hmac
import ipaddress


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False   # a host name: it may resolve anywhere


def bind_problem(host: str, token: str, setting: str) -> str | None:
    """Why serving on ``host`` is refused (the data says who talked to whom), else None.

    ``setting``: the config key that holds the token, for the message."""
    if not is_loopback(host) and not token:
        return (f"binding {host} reaches beyond this machine: set a bearer token "
                f"({setting} in the config) or bind 127.0.0.1")
    return None


def token_matches(expected: str, authorization: str | None, cookie: str | None) -> bool:
    """True when a configured token was presented (header `Bearer T` or the page's cookie)."""
    if not expected:
        return True
    offered = ""
    if authorization and authorization.startswith("Bearer "):
        offered = authorization[len("Bearer "):].strip()
    elif cookie:
        offered = cookie
    return bool(offered) and hmac.compare_digest(offered.encode(), expected.encode())
