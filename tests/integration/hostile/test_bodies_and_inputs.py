"""Hostile bodies, content types, ids and query strings: each answers a 4xx in the one
envelope (413 for oversize, 415 or 422 for what is not a JSON object, 404 for odd ids),
never a 5xx, and nothing is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.api.conftest import Api
from tests.integration.hostile.fuzzing import envelope_problem

JSON = {"content-type": "application/json"}
SMALL_LIMIT = 2048


def assert_refused(resp: Any, *statuses: int) -> dict[str, Any]:
    assert resp.status_code in statuses, (resp.status_code, resp.text[:300])
    problem = envelope_problem(resp)
    assert problem is None, problem
    return dict(resp.json()["error"])


async def assert_nothing_recorded(api: Api) -> None:
    listing = await api.client.get("/v1/deployments", headers=api.auth())
    assert listing.json()["items"] == []


@pytest.fixture
async def small(make_api: Any) -> Api:
    return await make_api(VISGATE_MAX_BODY_BYTES=SMALL_LIMIT)


def padded(size: int) -> bytes:
    """A valid create body of about `size` bytes (unknown fields are ignored)."""
    head = b'{"hf_model_id": "stabilityai/sdxl-turbo", "pad": "'
    return head + b"x" * max(0, size - len(head) - 2) + b'"}'


async def test_body_over_the_default_limit_answers_413(api: Api) -> None:
    body = padded(64 * 1024 + 1)
    resp = await api.client.post("/v1/deployments", content=body, headers={**api.auth(), **JSON})
    error = assert_refused(resp, 413)
    assert error["type"] == "PayloadTooLargeError"
    await assert_nothing_recorded(api)


async def test_body_just_under_the_limit_is_accepted(small: Api) -> None:
    """The control: the cap is the configured size, not something smaller."""
    body = padded(SMALL_LIMIT)
    assert len(body) == SMALL_LIMIT
    resp = await small.client.post(
        "/v1/deployments", content=body, headers={**small.auth(), **JSON}
    )
    assert resp.status_code == 202, resp.text


async def test_chunked_body_growing_past_the_limit_answers_413(small: Api) -> None:
    """No Content-Length to refuse up front: the cap must hold while the body streams in.
    (This answered a 400 "error parsing the body" before BodyTooLarge became an HTTPException.)"""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"hf_model_id": "stabilityai/sdxl-turbo", "pad": "'
        for _ in range(8):
            yield b"x" * 512
        yield b'"}'

    resp = await small.client.post(
        "/v1/deployments", content=chunks(), headers={**small.auth(), **JSON}
    )
    assert "content-length" not in resp.request.headers
    error = assert_refused(resp, 413)
    assert error["type"] == "PayloadTooLargeError"
    await assert_nothing_recorded(small)


async def test_oversize_body_on_the_worker_callback_answers_413(small: Api) -> None:
    resp = await small.client.post(
        "/internal/deployment-ready/dep_0000000000000000",
        content=b'{"status": "ready", "error": "' + b"e" * 4096 + b'"}',
        headers=JSON,
    )
    assert_refused(resp, 413)


@pytest.mark.parametrize(
    "body",
    [
        b'{"hf_model_id": ',
        b'{"hf_model_id": "a/b",}',
        b"{'hf_model_id': 'a/b'}",
        b"",
        b"[]",
        b'"stabilityai/sdxl-turbo"',
        b"null",
        b"1e999",
        b"NaN",
        b'{"hf_model_id": 1}',
        b'{"hf_model_id": null}',
        b'{"hf_model_id": ["a/b"]}',
        b'{"hf_model_id": {"$ne": null}}',
        b'{"hf_model_id": "a/b", "user_webhook_url": 42}',
        b'{"hf_model_id": "a/b", "gpu_tier": {"x": 1}}',
        '{"hf_model_id": "\u00e9/b"}'.encode("latin-1"),
        b"\xff\xfe\x00\x00",
        b'{"hf_model_id": "a/b", "x": ' + b"[" * 30000 + b"]" * 30000 + b"}",
    ],
    ids=lambda b: repr(b[:30]),
)
async def test_malformed_json_answers_4xx_in_the_envelope(api: Api, body: bytes) -> None:
    resp = await api.client.post("/v1/deployments", content=body, headers={**api.auth(), **JSON})
    error = assert_refused(resp, 400, 422)
    if resp.status_code == 422:
        assert error["fields"], error
        assert all(not f["field"].isdigit() for f in error["fields"]), error
    await assert_nothing_recorded(api)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"hf_model_id": "a/b"}'),
        ("application/xml", b"<hf_model_id>a/b</hf_model_id>"),
        ("application/x-www-form-urlencoded", b"hf_model_id=a%2Fb"),
        (
            "multipart/form-data; boundary=zz",
            b'--zz\r\nContent-Disposition: form-data; name="hf_model_id"\r\n\r\na/b\r\n--zz--\r\n',
        ),
        ("application/octet-stream", b"\x00\x01\x02"),
        (None, b'{"hf_model_id": "a/b"}'),
    ],
    ids=lambda v: str(v)[:20],
)
async def test_wrong_content_types_answer_415_or_422(
    api: Api, content_type: str | None, body: bytes
) -> None:
    headers = api.auth()
    if content_type:
        headers["content-type"] = content_type
    resp = await api.client.post("/v1/deployments", content=body, headers=headers)
    assert_refused(resp, 415, 422)
    await assert_nothing_recorded(api)


@pytest.mark.parametrize(
    "model_id",
    [
        "../../etc/passwd",
        "../secrets",
        "owner/..",
        "owner/.",
        "./name",
        "%2e%2e/%2e%2e",
        "owner/name%00",
        "owner/na\x00me",
        "owner\\name",
        "owner/name/../../x",
        "owner/名前",
        "\uff2f\uff37\uff2e\uff25\uff32/name",  # fullwidth OWNER: NFKC-folds to ASCII
        "own\u202eer/name",  # right-to-left override
        "owner/na\u200bme",  # zero-width space
        "owner/😀",
        "owner/name\r\nX-Injected: 1",
        "https://huggingface.co/owner/name",
        "a" * 97 + "/b",
    ],
)
async def test_hostile_model_ids_are_refused(api: Api, model_id: str) -> None:
    resp = await api.post_deployment(hf_model_id=model_id)
    error = assert_refused(resp, 422)
    assert error["fields"][0]["field"] == "hf_model_id"
    await assert_nothing_recorded(api)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/deployments/..%2F..%2Fhealth",
        "/v1/deployments/%2e%2e",
        "/v1/deployments/%00",
        "/v1/deployments/%F0%9F%98%80",
        "/v1/deployments/a%2Fb",
        "/v1/deployments/%C0%AE%C0%AE",  # overlong UTF-8 for '..'
        "/v1/deployments/%FF%FE",
        "/v1/deployments/" + "x" * 20_000,
        "/v1/deployments/dep_1' OR '1'='1",
        "/v1/deployments/dep_1%22%3B%20DROP%20TABLE%20documents%3B--",
        "/v1/deployments/%2e%2e/events",
        "/v1/deployments/%00/jobs/%00",
    ],
    ids=lambda p: p[:45],
)
async def test_hostile_ids_in_paths_answer_404(api: Api, path: str) -> None:
    dep = (await api.post_deployment()).json()["deployment_id"]
    resp = await api.client.get(path, headers=api.auth())
    error = assert_refused(resp, 404)
    assert error["type"] in ("DeploymentNotFoundError", "NotFoundError")
    # The store is intact after the injection attempts.
    assert (await api.client.get(f"/v1/deployments/{dep}", headers=api.auth())).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=101",
        "limit=" + "9" * 40,
        "limit=1e3",
        "status=bogus",
        "status=READY",
        "cursor=zzz",
        "cursor=%00",
        "cursor=" + "A" * 600,
        "cursor=%F0%9F%98%80",
    ],
    ids=lambda q: q[:30],
)
async def test_hostile_list_queries_answer_422(api: Api, query: str) -> None:
    resp = await api.client.get(f"/v1/deployments?{query}", headers=api.auth())
    error = assert_refused(resp, 422)
    assert error["type"] == "ValidationError"
    assert error["fields"][0]["field"] in ("limit", "status", "cursor")


@pytest.mark.parametrize(
    "headers",
    [
        {"Idempotency-Key": "k" * 256},
        {"Idempotency-Key": ""},
        {"X-Request-ID": "x" * 5000},
    ],
    ids=["long-idem", "empty-idem", "long-request-id"],
)
async def test_hostile_headers_never_5xx(api: Api, headers: dict[str, str]) -> None:
    resp = await api.client.post(
        "/v1/deployments",
        json={"hf_model_id": "a/b"},
        headers={**api.auth(), **headers},
    )
    assert resp.status_code in (202, 422), resp.text
    if resp.status_code == 422:
        assert envelope_problem(resp) is None
    # An unsafe client request id is replaced, never echoed.
    assert len(resp.headers["x-request-id"]) <= 64
