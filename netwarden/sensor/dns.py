"""Names of remote addresses, learnt from the DNS answers the kernel delivered.

`parse_answer` (pure) turns one response into (address, name) pairs, where the name is the one
the client asked for: `www.example.com CNAME edge.cdn.net; edge.cdn.net A 1.2.3.4` gives
1.2.3.4 -> www.example.com. `DnsNames` keeps the most recent name per address (bounded, least
recently used out first). `DnsStreams` puts DNS-over-TCP messages back together from the
pieces the receive hook sees (a resolver may read the length prefix and the message in two
calls). No reverse lookups are ever made.
"""

from __future__ import annotations

import ipaddress
import struct
import threading
from collections import OrderedDict

TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28
_MAX_POINTER_JUMPS = 64


class DnsFormatError(ValueError):
    """The bytes are not a well-formed (enough) DNS message."""


def _read_name(message: bytes, offset: int) -> tuple[str, int]:
    """A possibly compressed name at ``offset``; returns (name, offset after it)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(message):
            raise DnsFormatError("name runs past the message")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message):
                raise DnsFormatError("truncated compression pointer")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            jumps += 1
            if jumps > _MAX_POINTER_JUMPS:
                raise DnsFormatError("compression pointer loop")
            continue
        if length & 0xC0:
            raise DnsFormatError("unknown label type")
        offset += 1
        if length == 0:
            break
        label = message[offset: offset + length]
        if len(label) < length:
            raise DnsFormatError("label runs past the message")
        labels.append(label.decode("ascii", errors="replace").lower())
        offset += length
    return ".".join(labels), (end if end >= 0 else offset)


def dns_message(payload: bytes, tcp: bool) -> bytes:
    """The DNS message inside a UDP payload or a TCP segment (2-byte length prefix)."""
    if not tcp:
        return payload
    if len(payload) < 2:
        raise DnsFormatError("TCP segment shorter than its length prefix")
    (length,) = struct.unpack_from("!H", payload)
    return payload[2: 2 + length]


def parse_answer(message: bytes) -> list[tuple[str, str]]:
    """(address, queried name) for every A/AAAA record reachable from the question.

    Records are read as far as the message goes: a response cut short (by the copy size)
    still yields the records before the cut.
    """
    if len(message) < 12:
        raise DnsFormatError("shorter than a DNS header")
    _ident, flags, qdcount, ancount = struct.unpack_from("!HHHH", message)
    if not flags & 0x8000 or flags & 0x7800 or flags & 0x000F:
        return []   # a query, an unusual opcode, or an error response: nothing learnt
    offset = 12
    questions = []
    for _ in range(qdcount):
        name, offset = _read_name(message, offset)
        offset += 4
        questions.append(name)
    cnames: dict[str, str] = {}
    addresses: list[tuple[str, str]] = []   # (owner, address)
    for _ in range(ancount):
        try:
            owner, offset = _read_name(message, offset)
            rtype, _rclass, _ttl, rdlength = struct.unpack_from("!HHIH", message, offset)
        except (DnsFormatError, struct.error):
            break
        offset += 10
        rdata = message[offset: offset + rdlength]
        if len(rdata) < rdlength:
            break
        if rtype == TYPE_A and rdlength == 4:
            addresses.append((owner, str(ipaddress.IPv4Address(rdata))))
        elif rtype == TYPE_AAAA and rdlength == 16:
            addresses.append((owner, str(ipaddress.IPv6Address(rdata))))
        elif rtype == TYPE_CNAME:
            target, _ = _read_name(message, offset)
            cnames[owner] = target
        offset += rdlength
    return [(address, _asked_name(owner, questions, cnames)) for owner, address in addresses]


def _asked_name(owner: str, questions: list[str], cnames: dict[str, str]) -> str:
    """The question whose CNAME chain leads to ``owner`` (else the owner itself)."""
    for question in questions:
        name, seen = question, set()
        while name not in seen:
            if name == owner:
                return question
            seen.add(name)
            if name not in cnames:
                break
            name = cnames[name]
    return owner


class DnsStreams:
    """Messages of DNS-over-TCP connections, from the pieces each receive call read.

    Each message is a 2-byte length and that many bytes (RFC 1035 4.2.2). Pieces come in
    order per connection (identified by socket cookie); what is left of an unfinished message
    waits for the next piece. Bounded: at most ``max_streams`` connections are remembered
    (least recently fed out first). A piece cut short by the kernel's copy size loses the
    message boundaries after it, so that connection is forgotten after its message is read.
    """

    def __init__(self, max_streams: int = 1024) -> None:
        self._pending: OrderedDict[int, bytes] = OrderedDict()
        self._max_streams = max_streams
        self._lock = threading.Lock()

    def feed(self, stream: int, piece: bytes, truncated: bool = False) -> list[bytes]:
        """The messages ``piece`` completes (a message cut short is returned as far as kept)."""
        with self._lock:
            data = self._pending.pop(stream, b"") + piece
        messages = []
        while len(data) >= 2:
            (length,) = struct.unpack_from("!H", data)
            if len(data) < 2 + length:
                break
            messages.append(data[2: 2 + length])
            data = data[2 + length:]
        if truncated:
            if data[2:]:
                messages.append(data[2:])
            return messages
        if data:
            with self._lock:
                self._pending[stream] = data
                while len(self._pending) > self._max_streams:
                    self._pending.popitem(last=False)
        return messages

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)


class DnsNames:
    """address -> the name it was most recently resolved from (thread-safe, bounded)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._names: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()
        self.answers = 0
        self.malformed = 0

    def learn(self, payload: bytes, tcp: bool) -> None:
        try:
            pairs = parse_answer(dns_message(payload, tcp))
        except (DnsFormatError, struct.error):
            self.malformed += 1
            return
        self.answers += 1
        with self._lock:
            for address, name in pairs:
                self._names[address] = name
                self._names.move_to_end(address)
            while len(self._names) > self._capacity:
                self._names.popitem(last=False)

    def name_for(self, address: str) -> str:
        with self._lock:
            name = self._names.get(address)
            if name is not None:
                self._names.move_to_end(address)
        return name or ""

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)
