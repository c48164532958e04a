"""Local rendezvous ports: a free one to start a process group on, and telling a taken one from an init error."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind port 0; another process may still take it before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(message: str) -> bool:
    """Whether an init error says the rendezvous port is taken (torch's TCPStore: EADDRINUSE)."""
    text = message.lower()
    return "eaddrinuse" in text or "address already in use" in text
