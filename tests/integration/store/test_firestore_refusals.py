"""Firestore refusals a retry will not fix (permission, credentials, missing database or
index, a bad request) answer 503 with a message that says what to fix, never a bare 500,
and `/readiness` reports them.

The real `google-cloud-firestore` client talks gRPC to a small server on loopback that
refuses every call with one status code, as Firestore does when the setup is wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.api_core import exceptions as gexc

from tests.integration.api.conftest import api_settings
from visgate.api.app import create_app
from visgate.domain.errors import StoreAccessError, StoreUnavailableError
from visgate.services import build_services
from visgate.store.firestore import FirestoreBackend

PROJECT = "visgate-refusals"
_STREAMING = {"BatchGetDocuments", "RunQuery", "RunAggregationQuery"}


class RefusingFirestore(grpc.GenericRpcHandler):
    """Answers every Firestore RPC with `code`; `calls` lists the methods it was asked."""

    def __init__(self) -> None:
        self.code = grpc.StatusCode.PERMISSION_DENIED
        self.calls: list[str] = []

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method.rsplit("/", 1)[-1]  # type: ignore[attr-defined]
        self.calls.append(method)

        def refuse(_request: bytes, context: grpc.ServicerContext) -> Any:
            context.abort(self.code, f"refused ({self.code.name})")

        def refuse_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            refuse(request, context)
            yield b""  # never reached

        if method in _STREAMING:
            return grpc.unary_stream_rpc_method_handler(refuse_stream)
        return grpc.unary_unary_rpc_method_handler(refuse)


@pytest.fixture
def refusing(monkeypatch: pytest.MonkeyPatch) -> Iterator[RefusingFirestore]:
    handler = RefusingFirestore()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
    try:
        yield handler
    finally:
        server.stop(grace=None).wait()


@pytest.fixture
async def backend(refusing: RefusingFirestore) -> AsyncIterator[FirestoreBackend]:
    store = FirestoreBackend(project=PROJECT)
    yield store
    await store.aclose()


REFUSALS = [
    (grpc.StatusCode.PERMISSION_DENIED, "roles/datastore.user"),
    (grpc.StatusCode.UNAUTHENTICATED, "credentials"),
    (grpc.StatusCode.NOT_FOUND, "create the Firestore database"),
    (grpc.StatusCode.FAILED_PRECONDITION, "firestore.indexes.json"),
    (grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument"),
    (grpc.StatusCode.OUT_OF_RANGE, "OutOfRange"),  # any other refusal
]


@pytest.mark.parametrize(("code", "hint"), REFUSALS, ids=[c.name for c, _ in REFUSALS])
async def test_refusals_are_non_transient_503_store_errors(
    backend: FirestoreBackend, refusing: RefusingFirestore, code: grpc.StatusCode, hint: str
) -> None:
    refusing.code = code
    calls = {
        "ping": backend.ping(),
        "get": backend.get("deployments", "dep_1"),
        "insert": backend.insert("deployments", {"id": "dep_1"}),
        "query": backend.query("deployments", where={"tenant": "t1"}, limit=5),
    }
    for name, call in calls.items():
        with pytest.raises(StoreAccessError) as caught:
            await call
        error = caught.value
        assert error.status_code == 503 and not error.transient, name
        assert hint in error.message, (name, error.message)
        if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND):
            assert PROJECT in error.message  # which project to fix
    assert {"BatchGetDocuments", "Commit", "RunQuery"} <= set(refusing.calls)


async def test_outages_stay_transient(backend: FirestoreBackend) -> None:
    """The retry-worthy answers keep their meaning: the reconciler tries again later."""

    async def answer(exc: Exception) -> None:
        raise exc

    for exc in (
        gexc.ServiceUnavailable("down"),
        gexc.DeadlineExceeded("slow"),
        gexc.Aborted("contended"),
        gexc.ResourceExhausted("quota"),
        gexc.InternalServerError("oops"),
    ):
        with pytest.raises(StoreUnavailableError) as caught:
            await backend._guard(answer(exc))
        assert caught.value.transient


async def test_readiness_answers_503_for_a_firestore_that_refuses(
    tmp_path: Path, refusing: RefusingFirestore
) -> None:
    settings = api_settings(tmp_path, STORE="firestore", GCP_PROJECT_ID=PROJECT)
    services = build_services(settings, provider=False, hub=False)
    app = create_app(services=services, run_reconciler=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://visgate.test") as client,
    ):
        for code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND):
            refusing.code = code
            resp = await client.get("/readiness")
            assert resp.status_code == 503, resp.text
            body = resp.json()
            assert body["status"] == "unavailable" and body["store"] == "firestore"
            assert "firestore refused" in body["error"]
    await services.aclose()
