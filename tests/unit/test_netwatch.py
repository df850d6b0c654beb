"""rtnetlink parsing and what counts as the network coming back, on bytes the kernel sent.

Each hex string below was read from a NETLINK_ROUTE socket in a network namespace while
`ip` made the change named beside it.
"""

from __future__ import annotations

import socket
import struct

import pytest

from pivox.hw import netwatch as nw

# ip addr add 10.77.0.1/24 dev v0 (interface 3)
NEWADDR_V4 = bytes.fromhex(
    "4c0000001400000073640f6b4b5300000218800003000000080001000a4d0001080002000a4d0001"
    "0700030076300000080008008000000014000600fffffffffffffffff3dd0100f3dd0100")
# ip addr del 10.77.0.1/24 dev v0
DELADDR_V4 = bytes.fromhex(
    "4c0000001500000077640f6b505300000218800003000000080001000a4d0001080002000a4d0001"
    "0700030076300000080008008000000014000600fffffffffffffffff3dd0100f3dd0100")
# ip route add default via 10.77.0.2 dev v0
NEWROUTE_DEFAULT = bytes.fromhex(
    "340000001800000673640f6b4c53000002000000fe0300010000000008000f00fe000000080005000a4d"
    "00020800040003000000")
# ip route del default
DELROUTE_DEFAULT = bytes.fromhex(
    "340000001900000076640f6b4f53000002000000fe0300010000000008000f00fe000000080005000a4d"
    "00020800040003000000")
# ip -6 addr add fd00::1/64 dev v0: first tentative (duplicate detection running) ...
NEWADDR_V6_TENTATIVE = bytes.fromhex(
    "480000001400000000000000000000000a40c0000300000014000100fd00000000000000000000000000"
    "000114000600ffffffffffffffff3ade01003ade010008000800c0000000")
# ... then, once detection is over, the same address without IFA_F_TENTATIVE
NEWADDR_V6_READY = bytes.fromhex(
    "480000001400000000000000000000000a4080000300000014000100fd00000000000000000000000000"
    "000114000600ffffffffffffffff3ade01003ade01000800080080000000")
# ip link set lo up: 127.0.0.1 and its local-table route
NEWADDR_LOOPBACK = bytes.fromhex(
    "4c000000140000000000000000000000020880fe01000000080001007f000001080002007f000001"
    "070003006c6f0000080008008000000014000600ffffffffffffffff66dd010066dd0100")
NEWROUTE_LOCAL = bytes.fromhex(
    "3c00000018000006000000000000000002200000ff02fe020000000008000f00ff000000080001007f00"
    "0001080007007f0000010800040001000000")
# ip link set v0 up: the IPv6 link-local address
NEWADDR_LINK_LOCAL = bytes.fromhex(
    "500000001400000000000000000000000a4080fd0200000014000100fe8000000000000004990bfffe6a"
    "79fc14000600ffffffffffffffffd0dd0100d0dd0100080008008000000005000b0003000000")


def test_an_ipv4_address_appears_and_goes() -> None:
    assert nw.parse(NEWADDR_V4) == [nw.Address(True, socket.AF_INET, 3, "10.77.0.1", True,
                                               0x6B0F6473, 0x534B)]
    (gone,) = nw.parse(DELADDR_V4)
    assert isinstance(gone, nw.Address) and not gone.added


def test_a_default_route_appears_and_goes() -> None:
    (route,) = nw.parse(NEWROUTE_DEFAULT)
    assert route == nw.Route(True, socket.AF_INET, 3, 254, "10.77.0.2", True,
                             0x6B0F6473, 0x534C)
    (gone,) = nw.parse(DELROUTE_DEFAULT)
    assert isinstance(gone, nw.Route) and gone.default and not gone.added


def test_a_tentative_address_is_not_usable_until_detection_is_over() -> None:
    (tentative,) = nw.parse(NEWADDR_V6_TENTATIVE)
    (ready,) = nw.parse(NEWADDR_V6_READY)
    assert isinstance(tentative, nw.Address) and isinstance(ready, nw.Address)
    assert tentative.address == ready.address == "fd00::1"
    assert not tentative.usable and ready.usable


@pytest.mark.parametrize("frame", [NEWADDR_LOOPBACK, NEWADDR_LINK_LOCAL])
def test_loopback_and_link_local_addresses_are_not_the_network(frame: bytes) -> None:
    (addr,) = nw.parse(frame)
    assert isinstance(addr, nw.Address) and addr.added and not addr.usable


def test_a_local_table_route_is_not_a_default_route() -> None:
    (route,) = nw.parse(NEWROUTE_LOCAL)
    assert isinstance(route, nw.Route) and route.table == 255 and not route.default


def test_several_messages_in_one_datagram_and_a_truncated_tail() -> None:
    data = NEWADDR_V4 + NEWROUTE_DEFAULT + NEWADDR_LOOPBACK[:30]
    assert [type(c) for c in nw.parse(data)] == [nw.Address, nw.Route]
    assert nw.parse(b"") == [] and nw.parse(b"\x00" * 15) == []
    assert nw.parse(b"\x10\x00\x00\x00" + b"\xff" * 12) == []  # an unknown type is skipped


def test_the_end_of_a_dump() -> None:
    done = struct.pack("=IHHII", 20, nw.NLMSG_DONE, 2, 77, 123) + b"\x00" * 4
    assert nw.parse(done) == [nw.Done(77)]


def test_a_dump_request_is_an_rtgenmsg() -> None:
    req = nw.dump_request(nw.RTM_GETADDR, 9)
    assert req == struct.pack("=IHHIIB3x", 20, 22, 0x301, 9, 0, socket.AF_UNSPEC)


def test_news_is_what_appears_usable_and_was_not_known() -> None:
    state = nw.NetState()
    assert state.apply(nw.parse(NEWADDR_LOOPBACK + NEWROUTE_LOCAL)) == []
    assert state.apply(nw.parse(NEWADDR_V4)) == [("address 10.77.0.1", 3)]
    assert state.apply(nw.parse(NEWADDR_V4)) == []  # a refresh of a known one
    assert state.apply(nw.parse(NEWROUTE_DEFAULT)) == [("default route via 10.77.0.2", 3)]
    assert state.apply(nw.parse(NEWADDR_V6_TENTATIVE)) == []
    assert state.apply(nw.parse(NEWADDR_V6_READY)) == [("address fd00::1", 3)]
    state.apply(nw.parse(DELADDR_V4 + DELROUTE_DEFAULT))
    assert state.routes == set() and len(state.addresses) == 1
    assert state.apply(nw.parse(NEWADDR_V4 + NEWROUTE_DEFAULT)) == [
        ("address 10.77.0.1", 3), ("default route via 10.77.0.2", 3)]  # back: news again
