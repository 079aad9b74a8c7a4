"""What an operator reads: request metrics with bounded labels."""

from __future__ import annotations

from tests.integration.api.conftest import Api, ProbeRun


async def test_unknown_http_methods_share_one_metric_label(api: Api) -> None:
    for method in ("FOOBAR", "BREW", "PROPFIND", "X-LONG-METHOD-NAME"):
        resp = await api.client.request(method, "/v1/deployments", headers=api.auth())
        assert resp.status_code == 405, (method, resp.text)
    await api.client.get("/health")
    text = (await api.client.get("/metrics")).text
    assert (
        'visgate_http_requests_total{method="other",route="/v1/deployments",status="405"} 4.0'
        in text
    )
    for method in ("FOOBAR", "BREW", "PROPFIND", "X-LONG-METHOD-NAME"):
        assert f'method="{method}"' not in text
    assert 'visgate_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text


def test_log_lines_of_a_route_on_one_deployment_carry_its_id(probe_run: ProbeRun) -> None:
    """The DELETE route's own line names no deployment; the request's context does."""
    result = probe_run.result
    lines = [r for r in probe_run.records if r.get("event") == "deployment_delete_requested"]
    assert len(lines) == 1, [r.get("event") for r in probe_run.records]
    assert lines[0]["deployment_id"] == result["deployment_id"]
    assert lines[0]["request_id"] == result["delete_request_id"]
    assert lines[0]["status"] == "deleting"
