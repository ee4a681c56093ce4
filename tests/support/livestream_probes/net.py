"""Reachability from where the probe runs (the lab's root namespace is "the internet"):
does a TCP port answer, refuse, or stay silent?"""

from __future__ import annotations

import errno
import socket

OPEN, REFUSED, SILENT, UNREACHABLE = "open", "refused", "silent", "unreachable"


def tcp_state(address: str, port: int, timeout: float = 2.0, source: str | None = None) -> str:
    """How ``address``:``port`` answers a TCP connection attempt.

    ``open``: something accepted it. ``refused``: a reset came back (a host with nothing
    listening, or a firewall rule that rejects). ``silent``: nothing came back within
    ``timeout`` seconds (a security group or firewall that drops). ``unreachable``: the
    network said there is no route (an ICMP error, or no route here at all).
    ``source``: the local address to connect from (another host of the lab's internet).
    The caller names the address: point it only at loopback or the lab's machines.
    """
    try:
        with socket.create_connection((address, port), timeout=timeout,
                                      source_address=(source, 0) if source else None):
            return OPEN
    except ConnectionRefusedError:
        return REFUSED
    except (socket.timeout, TimeoutError):
        return SILENT
    except OSError as error:
        if error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return UNREACHABLE
        raise


def open_ports(address: str, ports: list[int], timeout: float = 2.0) -> list[int]:
    """The ports among ``ports`` that accept a TCP connection on ``address``."""
    return [port for port in ports if tcp_state(address, port, timeout) == OPEN]
