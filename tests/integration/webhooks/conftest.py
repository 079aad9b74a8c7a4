"""A real webhook receiver on 127.0.0.1 (uvicorn + Starlette in a thread), plain and TLS.

The receiver records every request and answers by path, so one server covers success,
failures, throttling, redirects, slow and endless answers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import serve_in_thread
from tests.support.webhooks import client, fake_dns, secret

__all__ = ["client", "fake_dns", "receiver", "secret", "tls_receiver"]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    base_url: str = ""
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    flaky_failures_left: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]


def _build_app(receiver: Receiver) -> Starlette:
    async def record(request: Request) -> Received:
        received = Received(request.url.path, dict(request.headers), await request.body())
        with receiver.lock:
            receiver.requests.append(received)
        return received

    async def ok(request: Request) -> Response:
        await record(request)
        return Response("thanks", status_code=200)

    async def accepted(request: Request) -> Response:
        await record(request)
        return Response(status_code=204)

    async def fail(request: Request) -> Response:
        await record(request)
        return Response("database is down", status_code=500)

    async def flaky(request: Request) -> Response:
        await record(request)
        with receiver.lock:
            failing = receiver.flaky_failures_left > 0
            receiver.flaky_failures_left -= 1
        return Response(status_code=500 if failing else 200)

    async def throttled(request: Request) -> Response:
        await record(request)
        return Response("slow down", status_code=429, headers={"Retry-After": "120"})

    async def unavailable(request: Request) -> Response:
        await record(request)
        return Response(status_code=503, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})

    async def gone(request: Request) -> Response:
        await record(request)
        return Response("unsubscribed", status_code=410)

    async def redirect(request: Request) -> Response:
        await record(request)
        return Response(status_code=307, headers={"Location": receiver.url("/redirect-target")})

    async def to_metadata(request: Request) -> Response:
        await record(request)
        return Response(
            status_code=302, headers={"Location": "http://169.254.169.254/computeMetadata/v1/"}
        )

    async def slow(request: Request) -> Response:
        await record(request)
        for _ in range(250):  # 5 s, unless the server is shutting down
            if receiver.closing.is_set():
                break
            await asyncio.sleep(0.02)
        return Response(status_code=200)

    async def endless(request: Request) -> Response:
        await record(request)

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                yield b"x" * 65536
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), status_code=500)

    async def latin1(request: Request) -> Response:
        await record(request)
        return Response(
            "caf\xe9 ferm\xe9".encode("latin-1"),
            status_code=400,
            headers={"content-type": "text/plain; charset=latin-1"},
        )

    routes = {
        "/ok": ok,
        "/accepted": accepted,
        "/fail": fail,
        "/flaky": flaky,
        "/throttled": throttled,
        "/unavailable": unavailable,
        "/gone": gone,
        "/redirect": redirect,
        "/redirect-target": ok,
        "/to-metadata": to_metadata,
        "/slow": slow,
        "/endless": endless,
        "/latin1": latin1,
    }
    return Starlette(routes=[Route(p, h, methods=["POST"]) for p, h in routes.items()])


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    with serve_in_thread(_build_app(receiver)) as base_url:
        receiver.base_url = base_url
        receiver.port = int(base_url.rsplit(":", 1)[1])
        yield receiver
        receiver.closing.set()


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    with receiver_server.lock:
        receiver_server.requests.clear()
        receiver_server.flaky_failures_left = 0
    return receiver_server


def _self_signed_cert(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for `name` only, so TLS succeeds only when we verify against that name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class TlsReceiver:
    receiver: Receiver
    port: int
    ca_file: Path  # trust this to verify the server's certificate for `hooks.test`


@pytest.fixture(scope="module")
def tls_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsReceiver]:
    cert, key = _self_signed_cert(tmp_path_factory.mktemp("tls"), "hooks.test")
    receiver = Receiver()
    with serve_in_thread(
        _build_app(receiver), ssl_certfile=str(cert), ssl_keyfile=str(key)
    ) as base_url:
        try:
            yield TlsReceiver(receiver, int(base_url.rsplit(":", 1)[1]), cert)
        finally:
            receiver.closing.set()
