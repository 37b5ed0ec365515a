"""A real SMTP server on loopback (aiosmtpd), for the email tests: messages really leave over TCP.

`refuse` makes the server answer the next n messages with a temporary failure (451), `stall` holds
the next n past the client's timeout, so failures are the server's, not a mock's.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """What the server accepted, parsed, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = 0
        self.stall = 0
        self.stall_seconds = 0.0
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            if self.refuse:
                self.refuse -= 1
                return "451 4.3.0 try again later"
            stall, self.stall = self.stall > 0, max(self.stall - 1, 0)
        if stall:
            await asyncio.sleep(self.stall_seconds)
            return "451 4.4.2 too slow"
        with self._lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.refuse = self.stall = 0

    def wait_for(self, count: int, timeout: float = 20) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)


class SmtpServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()
