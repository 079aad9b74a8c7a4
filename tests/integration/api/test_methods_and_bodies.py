"""What an HTTP client that strays from the documented calls gets back: a 405 whose `Allow`
names every method the path serves, and a body that cannot be decoded answered as the API
document says (a 422 in the error envelope)."""

from __future__ import annotations

import pytest

from tests.integration.api.conftest import Api
from tests.integration.api.test_deployments_api import assert_envelope


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "PATCH"])
async def test_a_405_lists_every_method_of_the_resource(api: Api, method: str) -> None:
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    for path, allowed in [
        ("/v1/deployments", "GET, POST"),
        (f"/v1/deployments/{dep_id}", "DELETE, GET"),
        (f"/v1/deployments/{dep_id}/jobs/sync", "POST"),
        (f"/v1/deployments/{dep_id}/jobs/job-1", "GET"),
    ]:
        resp = await api.client.request(method, path, headers=api.auth())
        assert_envelope(resp, 405, "MethodNotAllowedError")
        assert resp.headers["allow"] == allowed, path


async def test_every_405_allow_header_matches_the_api_document(api: Api) -> None:
    """What the OpenAPI document lists for a path is what a 405 there advertises."""
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    for template, item in paths.items():
        path = template.replace("{deployment_id}", "dep_0123456789abcdef").replace(
            "{job_id}", "job-1"
        )
        resp = await api.client.request("TRACE", path, headers=api.auth())
        assert resp.status_code == 405, template
        assert resp.headers["allow"] == ", ".join(sorted(m.upper() for m in item)), template


@pytest.mark.parametrize("suffix", ["/jobs", "/jobs/sync", None, ""])
async def test_a_body_that_is_not_utf8_json_is_a_documented_422(
    api: Api, suffix: str | None
) -> None:
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    if suffix is None:  # the worker callback
        path = f"/internal/deployment-ready/{dep_id}"
        headers = {"Authorization": f"Bearer {api.services.callback_tokens.token(dep_id)}"}
    else:
        path = f"/v1/deployments/{dep_id}{suffix}" if suffix else "/v1/deployments"
        headers = api.auth()
    resp = await api.client.post(
        path, content=b'{"input": "\xff"}', headers={**headers, "content-type": "application/json"}
    )
    error = assert_envelope(resp, 422, "ValidationError")
    assert error["fields"] == [{"field": "body", "message": "the body is not valid UTF-8 JSON"}]
    operation = (await api.client.get("/openapi.json")).json()["paths"]
    template = path.replace(dep_id, "{deployment_id}")
    assert "422" in operation[template]["post"]["responses"]
