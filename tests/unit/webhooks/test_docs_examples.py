"""The receiver examples in docs/webhooks.md work as printed, against what we send."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.webhooks import ready_event
from visgate.webhooks import generate_secret
from visgate.webhooks.signing import build_headers

DOC = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def _run_block(containing: str) -> dict[str, Any]:
    (code,) = [block for block in _python_blocks() if containing in block]
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def _signed_event(secret: str) -> tuple[dict[str, str], bytes]:
    """A `deployment.ready` event as production queues and sends it, signed as the sender does."""
    msg_id, body = ready_event(time.time())
    return build_headers(secret, msg_id, body), body


def test_plain_python_example_verifies_our_signatures() -> None:
    verify = _run_block("def verify(")["verify"]
    secret = generate_secret()
    headers, body = _signed_event(secret)
    assert verify(secret, headers, body)["data"]["deployment_id"] == "dep_1"
    with pytest.raises(ValueError, match="signature"):
        verify(secret, headers, body.replace(b"dep_1", b"dep_2"))
    with pytest.raises(ValueError, match="signature"):
        verify(generate_secret(), headers, body)
    stale = build_headers(secret, headers["webhook-id"], body, now=time.time() - 600)
    with pytest.raises(ValueError, match="too old"):
        verify(secret, stale, body)


def test_fastapi_example_accepts_signed_webhooks_and_refuses_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = generate_secret()
    monkeypatch.setenv("VISGATE_WEBHOOK_SECRET", secret)
    app = _run_block("verify_webhook(SECRET")["app"]
    headers, body = _signed_event(secret)
    with TestClient(app) as client:
        assert client.post("/visgate", content=body, headers=headers).json() == {"ok": True}
        assert client.post("/visgate", content=body, headers=headers).status_code == 200
        forged = {**headers, "webhook-signature": "v1,AAAA"}
        assert client.post("/visgate", content=body, headers=forged).status_code == 400
        assert client.post("/visgate", content=body).status_code == 400
