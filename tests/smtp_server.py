"""Real servers for the delivery tests: an SMTP server (aiosmtpd) that keeps what it receives,
parsed with ``email``, and an HTTP endpoint standing in for the SMS gateway."""
import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list
    message: email.message.EmailMessage
    raw: bytes

    @property
    def subject(self):
        # a folded Subject may unfold with a leading space; mail programs drop it too
        return str(self.message["Subject"]).strip()

    def part(self, content_type):
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return part
        return None

    def text(self, content_type="text/plain"):
        part = self.part(content_type)
        return part.get_content().replace("\r\n", "\n") if part is not None else None


class Handler:
    """Accepts everything except the addresses in ``refuse``; can stall on a RCPT."""

    def __init__(self):
        self.messages = []
        self.refuse = {}                 # address -> "550 ..." reply
        self.stall_after = None          # stall the RCPT of the message after this many
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.delay = 0.0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        if self.stall_after is not None and len(self.messages) >= self.stall_after \
                and not self.release.is_set():
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg, raw))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.handler = Handler()
        self.controller = None

    @property
    def messages(self):
        return self.handler.messages

    def start(self):
        from aiosmtpd.controller import Controller
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.handler.release.set()
            self.controller.stop()
            self.controller = None

    def refuse(self, address, reply="550 5.1.1 <{a}>: Recipient address rejected: User unknown"):
        self.handler.refuse[address.lower()] = reply.format(a=address)

    def to(self, address):
        """Messages whose envelope went to ``address``."""
        return [m for m in self.messages if address.lower() in [r.lower() for r in m.rcpt_tos]]

    def wait_for(self, count, timeout=10):
        deadline = time.time() + timeout
        while len(self.messages) < count and time.time() < deadline:
            time.sleep(0.02)
        return self.messages


class SmsGateway:
    """A local HTTP endpoint that takes Apprise's json:// POSTs."""

    def __init__(self):
        self.received = []
        gateway = self

        class Endpoint(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                gateway.received.append({"path": self.path, **body})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"json://127.0.0.1:{self.port}/sms?:to={{to}}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
