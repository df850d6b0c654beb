"""The kernel's own news of the network: a small rtnetlink reader for address and route changes.

When a default route or a usable address (not loopback, not link-local, not tentative, not
failed duplicate detection) appears, the network may be back: `on_change(reason)` is
called, and the daemon tells the link (`RealtimeLink.network_changed()`), which retries at
once instead of at the end of its backoff. One AF_NETLINK socket joined to the IPv4/IPv6
address and route groups, read from the event loop (`loop.add_reader`); no polling, no
`ip` output. Existing addresses and routes are read once at start (a dump) so that a
lifetime refresh of one already known is not news. Parsing (`parse`) and the bookkeeping
of what is known (`NetState`) are pure and tested with literal kernel bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("pivox.netwatch")

RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400
GROUPS = RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x08, 0x40
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RTN_UNICAST, RT_TABLE_LOCAL = 1, 255
RT_SCOPE_HOST = 254

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst/src len, tos, table, proto, scope, type, flags
RTATTR = struct.Struct("=HH")  # len, type


@dataclass(frozen=True)
class Address:
    added: bool
    family: int
    index: int
    address: str
    usable: bool
    seq: int = 0
    pid: int = 0


@dataclass(frozen=True)
class Route:
    added: bool
    family: int
    index: int  # the outgoing interface (0: none given)
    table: int
    gateway: str
    default: bool  # a unicast route to everything (dst_len 0), outside the local table
    seq: int = 0
    pid: int = 0


@dataclass(frozen=True)
class Done:
    """The end of a dump we asked for (NLMSG_DONE or NLMSG_ERROR with our sequence)."""

    seq: int


Change = Address | Route | Done


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while start + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, start)
        if length < RTATTR.size or start + length > end:
            break
        out[kind] = data[start + RTATTR.size:start + length]
        start += _align(length)
    return out


def _ip(family: int, raw: bytes) -> str:
    fam = socket.AF_INET6 if family == socket.AF_INET6 else socket.AF_INET
    try:
        return socket.inet_ntop(fam, raw)
    except (ValueError, OSError):
        return ""


def usable_address(address: str, scope: int, flags: int) -> bool:
    """An address a connection to the Internet could come from."""
    if not address or scope >= RT_SCOPE_HOST or flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
        return False
    ip = ipaddress.ip_address(address)
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def parse(data: bytes) -> list[Change]:
    """Every address, route and end-of-dump message in one netlink datagram. Never raises:
    a truncated or unknown message ends or is skipped."""
    out: list[Change] = []
    pos = 0
    while pos + NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, pid = NLMSGHDR.unpack_from(data, pos)
        if length < NLMSGHDR.size or pos + length > len(data):
            break
        body, end = pos + NLMSGHDR.size, pos + length
        if kind in (NLMSG_DONE, NLMSG_ERROR):
            out.append(Done(seq))
        elif kind in (RTM_NEWADDR, RTM_DELADDR) and body + IFADDRMSG.size <= end:
            family, _plen, flags, scope, index = IFADDRMSG.unpack_from(data, body)
            attrs = _attrs(data, body + IFADDRMSG.size, end)
            if IFA_FLAGS in attrs and len(attrs[IFA_FLAGS]) >= 4:
                flags = struct.unpack("=I", attrs[IFA_FLAGS][:4])[0]
            addr = _ip(family, attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS) or b"")
            out.append(Address(kind == RTM_NEWADDR, family, index, addr,
                               usable_address(addr, scope, flags), seq, pid))
        elif kind in (RTM_NEWROUTE, RTM_DELROUTE) and body + RTMSG.size <= end:
            family, dst_len, _s, _t, table, _p, _sc, rtype, _f = RTMSG.unpack_from(data, body)
            attrs = _attrs(data, body + RTMSG.size, end)
            if RTA_TABLE in attrs and len(attrs[RTA_TABLE]) >= 4:
                table = struct.unpack("=I", attrs[RTA_TABLE][:4])[0]
            oif = attrs.get(RTA_OIF, b"")
            index = struct.unpack("=I", oif[:4])[0] if len(oif) >= 4 else 0
            default = dst_len == 0 and rtype == RTN_UNICAST and table != RT_TABLE_LOCAL
            out.append(Route(kind == RTM_NEWROUTE, family, index, table,
                             _ip(family, attrs.get(RTA_GATEWAY, b"")), default, seq, pid))
        pos += _align(length)
    return out


class NetState:
    """What is known to be there; `apply` says what is new and worth a retry."""

    def __init__(self) -> None:
        self.addresses: set[tuple[int, int, str]] = set()
        self.routes: set[tuple[int, int, int, str]] = set()

    def apply(self, changes: list[Change]) -> list[tuple[str, int]]:
        """(what appeared, interface index) for each usable address or default route that
        was not known before."""
        news: list[tuple[str, int]] = []
        for c in changes:
            if isinstance(c, Address):
                addr = (c.family, c.index, c.address)
                if c.added and c.usable and addr not in self.addresses:
                    self.addresses.add(addr)
                    news.append((f"address {c.address}", c.index))
                elif not (c.added and c.usable):
                    self.addresses.discard(addr)
            elif isinstance(c, Route) and c.default:
                route = (c.family, c.table, c.index, c.gateway)
                if c.added and route not in self.routes:
                    self.routes.add(route)
                    via = f" via {c.gateway}" if c.gateway else ""
                    news.append((f"default route{via}", c.index))
                elif not c.added:
                    self.routes.discard(route)
        return news


@dataclass(frozen=True)
class NetWatchSnapshot:
    available: bool  # the netlink socket is open
    default_route: bool
    usable_addresses: int
    changes: int  # times on_change was called
    last_change: str
    last_change_at: float  # monotonic; 0: never


def open_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                         socket.NETLINK_ROUTE)
    try:
        sock.bind((0, GROUPS))
    except OSError:
        sock.close()
        raise
    return sock


def dump_request(kind: int, seq: int) -> bytes:
    """An RTM_GETADDR or RTM_GETROUTE dump of every family (an rtgenmsg, padded)."""
    body = struct.pack("=B3x", socket.AF_UNSPEC)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP,
                         seq, 0) + body


class NetWatch:
    """Calls `on_change(reason)` on the loop when the network may have come back."""

    def __init__(self, on_change: Callable[[str], None]) -> None:
        self._on_change = on_change
        self.state = NetState()
        self._sock: socket.socket | None = None
        self._dumps = [RTM_GETADDR, RTM_GETROUTE]  # asked one after the other
        self._dump_seq = 0
        self._changes = 0
        self._last = ""
        self._last_at = 0.0

    async def run(self) -> None:
        """Until cancelled. Without netlink (a sandbox), logs once and idles: the link
        still finds the network by its probe."""
        try:
            self._sock = open_socket()
        except OSError as exc:
            log.warning("network changes not watched (netlink: %s); the link probes instead",
                        exc.strerror or exc)
            await asyncio.Event().wait()
            return
        loop = asyncio.get_running_loop()
        loop.add_reader(self._sock.fileno(), self._readable)
        self._next_dump()
        try:
            await asyncio.Event().wait()
        finally:
            loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def snapshot(self) -> NetWatchSnapshot:
        return NetWatchSnapshot(self._sock is not None, bool(self.state.routes),
                                len(self.state.addresses), self._changes, self._last,
                                self._last_at)

    def _next_dump(self) -> None:
        assert self._sock is not None
        if not self._dumps:
            self._dump_seq = 0
            return
        self._dump_seq = int(time.monotonic() * 1000) & 0x7FFFFFFF or 1
        with contextlib.suppress(OSError):
            self._sock.send(dump_request(self._dumps.pop(0), self._dump_seq))

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:  # ENOBUFS: the kernel dropped news; assume the worst
                self._report(f"netlink: {exc.strerror or exc}")
                continue
            self._take(parse(data))

    def _take(self, changes: list[Change]) -> None:
        ours = [c for c in changes if self._dump_seq and c.seq == self._dump_seq]
        news = self.state.apply([c for c in changes if not isinstance(c, Done)])
        if any(isinstance(c, Done) for c in ours):
            self._next_dump()
        if ours:  # the start-up dump: what is already there is not news
            return
        for what, index in news:
            self._report(f"{what} on {_ifname(index)}")

    def _report(self, reason: str) -> None:
        self._changes += 1
        self._last, self._last_at = reason, time.monotonic()
        log.info("network: %s", reason)
        self._on_change(reason)


def _ifname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return f"interface {index}"
