"""The reachability probe on loopback: a listening port is open, a closed one refuses."""

from __future__ import annotations

import socket

from livestream_probes.net import OPEN, REFUSED, open_ports, tcp_state


def test_open_and_refused_ports_are_told_apart():
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, not listening: the kernel answers with a reset
        open_port, closed_port = listening.getsockname()[1], closed.getsockname()[1]
        assert tcp_state("127.0.0.1", open_port) == OPEN
        assert tcp_state("127.0.0.1", closed_port) == REFUSED
        assert open_ports("127.0.0.1", [closed_port, open_port]) == [open_port]
