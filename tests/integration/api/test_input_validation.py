"""Bad input answers 4xx in the one envelope, naming the field; nothing answers 500."""

from __future__ import annotations

import pytest

from tests.integration.api.conftest import Api
from tests.integration.api.test_deployments_api import assert_envelope


@pytest.mark.parametrize(
    "model_id",
    [
        "no-slash",
        "a/b/c",
        "-lead/name",
        "owner/name-",
        "owner/na--me",
        "owner/na..me",
        "owner/name.git",
        "ownér/name",
        "owner/" + "x" * 97,
        "",
        "owner/",
        "/name",
        "own er/name",
    ],
)
async def test_model_id_must_be_a_hub_repo_id(api: Api, model_id: str) -> None:
    resp = await api.post_deployment(hf_model_id=model_id)
    error = assert_envelope(resp, 422, "ValidationError")
    assert error["fields"][0]["field"] == "hf_model_id"


@pytest.mark.parametrize(
    "model_id",
    ["stabilityai/sdxl-turbo", "black-forest-labs/FLUX.1-schnell", "a/b", "lumen/3d-pipeline"],
)
async def test_valid_model_ids_are_accepted(api: Api, model_id: str) -> None:
    assert (await api.post_deployment(hf_model_id=model_id)).status_code == 202


async def test_missing_model_id_names_the_field(api: Api) -> None:
    resp = await api.client.post("/v1/deployments", json={}, headers=api.auth())
    error = assert_envelope(resp, 422, "ValidationError")
    assert error["fields"] == [{"field": "hf_model_id", "message": "Field required"}]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "file:///etc/passwd", "not a url", "http://"]
)
async def test_webhook_url_must_be_http(api: Api, url: str) -> None:
    resp = await api.post_deployment(user_webhook_url=url)
    error = assert_envelope(resp, 422, "ValidationError")
    assert error["fields"][0]["field"] == "user_webhook_url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/hook",
    ],
)
async def test_private_webhook_targets_are_refused_unless_allowed(make_api, url: str) -> None:
    strict = await make_api(WEBHOOK_ALLOW_PRIVATE_URLS=False)
    resp = await strict.post_deployment(user_webhook_url=url)
    assert_envelope(resp, 422, "ValidationError")


async def test_unknown_gpu_tier_is_refused(api: Api) -> None:
    resp = await api.post_deployment(gpu_tier="quantum-9000")
    error = assert_envelope(resp, 422, "ValidationError")
    assert "gpu_tier" in error["fields"][0]["field"]


async def test_unknown_fields_are_ignored(api: Api) -> None:
    resp = await api.post_deployment(surprise="yes", nested={"a": 1})
    assert resp.status_code == 202


async def test_oversize_body_is_413(api: Api) -> None:
    resp = await api.client.post(
        "/v1/deployments",
        content=b'{"hf_model_id": "a/b", "pad": "' + b"x" * 70_000 + b'"}',
        headers={**api.auth(), "content-type": "application/json"},
    )
    assert_envelope(resp, 413, "PayloadTooLargeError")


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (b"{not json", "application/json"),
        (b"[]", "application/json"),
        (b"null", "application/json"),
        (b"hf_model_id=a/b", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/json"),
    ],
)
async def test_malformed_bodies_are_422_not_500(api: Api, content: bytes, ctype: str) -> None:
    resp = await api.client.post(
        "/v1/deployments", content=content, headers={**api.auth(), "content-type": ctype}
    )
    assert_envelope(resp, 422, "ValidationError")


async def test_unknown_route_uses_the_envelope(api: Api) -> None:
    assert_envelope(await api.client.get("/v2/nothing"), 404, "NotFoundError")
    assert_envelope(await api.client.put("/health"), 405, "MethodNotAllowedError")
