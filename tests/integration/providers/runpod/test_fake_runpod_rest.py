"""The fake Runpod's REST API v2, driven with plain httpx (no product code): it takes what
Runpod's OpenAPI document allows, refuses the rest as Runpod does, shares its account with
GraphQL, and every answer fits the document (the `fake` fixture asserts no violation)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.fakes import runpod_rest_ops
from tests.fakes.runpod import API_KEY, QUOTA_MESSAGE, RunningFakeRunpod
from tests.fakes.runpod_contract import check_response, document, match

PROBLEM = "application/problem+json"
SCALING = {"type": "QUEUE_DELAY", "queueDelay": 4}


@pytest.fixture
def rest(fake: RunningFakeRunpod) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=fake.rest_url, headers=headers, timeout=5) as client:
        yield client


def _examples(path: str, method: str) -> list[dict[str, Any]]:
    media = document()["paths"][path][method]["requestBody"]["content"]["application/json"]
    return [e["value"] for e in media["examples"].values()]


def _template(rest: httpx.Client, name: str = "tpl", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "image": "ghcr.io/visgate/worker:1", "serverless": True, **fields}
    answer = rest.post("/templates", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _endpoint(rest: httpx.Client, name: str = "ep-one", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "type": "QUEUE", "gpu": {"pools": ["ADA_24"]}, "scaling": SCALING}
    body = {"image": "ghcr.io/x/y:1", **body, **fields}
    answer = rest.post("/serverless", json={k: v for k, v in body.items() if v is not None})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _graphql(fake: RunningFakeRunpod, query: str, variables: dict | None = None) -> dict:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = {"query": query, "variables": variables or {}}
    answer = httpx.post(fake.graphql_url, json=body, headers=headers, timeout=5).json()
    assert "errors" not in answer, answer
    return answer["data"]


def test_every_documented_example_body_is_accepted(
    rest: httpx.Client, fake: RunningFakeRunpod
) -> None:
    fake.state.worker_quota = 100  # the examples ask for up to 10 workers
    for body in _examples("/v2/templates", "post"):
        assert rest.post("/templates", json=body).status_code == 201
    gpu_examples = [b for b in _examples("/v2/serverless", "post") if "gpu" in b]
    assert gpu_examples  # the CPU example does not fit the fake (GPU pools only)
    for body in gpu_examples:
        made = rest.post("/serverless", json=body)
        assert made.status_code == 201, made.text
        assert rest.get(f"/serverless/{made.json()['id']}").json() == made.json()
    scale = _examples("/v2/serverless/{id}", "patch")[0]
    patched = rest.patch(f"/serverless/{made.json()['id']}", json=scale)
    assert patched.status_code == 200 and patched.json()["workers"] == scale["workers"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"bogus": 1}, "$: additional properties 'bogus' not allowed"),
        ({"name": None}, "$: missing property 'name'"),
        ({"type": "QUEUED"}, "$.type: value must be one of 'QUEUE', 'LOAD_BALANCER'"),
        ({"gpu": {"pools": ["ADA_24", "TPU_9"]}}, "$.gpu.pools[1]: value must be one of"),
        ({"workers": {"max": 1, "spare": 2}}, "$.workers: additional properties 'spare'"),
    ],
)
def test_a_bad_body_is_a_422_problem_in_runpods_words(
    rest: httpx.Client, fake: RunningFakeRunpod, change: dict[str, Any], error: str
) -> None:
    body = {"name": "ep", "image": "i:1", "type": "QUEUE", "gpu": {"pools": ["ADA_24"]}}
    body = {k: v for k, v in {**body, "scaling": SCALING, **change}.items() if v is not None}
    answer = rest.post("/serverless", json=body)
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["title"] == "Unprocessable Entity" and problem["status"] == 422
    assert [e for e in problem["errors"] if e.startswith(error)], problem
    assert fake.state.endpoints == {}
    assert fake.state.calls_of("createEndpoint")[-1].variables == body


def test_the_key_goes_in_the_authorization_header_only(
    rest: httpx.Client, fake: RunningFakeRunpod
) -> None:
    in_url = httpx.get(f"{fake.rest_url}/serverless", params={"api_key": API_KEY})
    assert in_url.status_code == 400 and in_url.headers["content-type"] == PROBLEM
    wrong = rest.get("/serverless", headers={"Authorization": "Bearer rp_wrong"})
    assert wrong.status_code == 401 and wrong.json()["status"] == 401
    assert rest.get("/serverless").json() == {"endpoints": []}


def test_both_apis_see_one_account(rest: httpx.Client, fake: RunningFakeRunpod) -> None:
    fake.state.worker_quota = 100
    made = _endpoint(rest, "ep-rest", env={"A": "1"})
    mine = _graphql(fake, "{ myself { endpoints { id name templateId env { key value } } } }")
    assert [(e["id"], e["name"]) for e in mine["myself"]["endpoints"]] == [(made["id"], "ep-rest")]
    assert mine["myself"]["endpoints"][0]["env"] == [{"key": "A", "value": "1"}]

    template = _template(rest, "tpl-gql")
    saved = _graphql(
        fake,
        "mutation($i: EndpointInput!) { saveEndpoint(input: $i) { id } }",
        {"i": {"name": "ep-gql", "templateId": template["id"], "gpuIds": "AMPERE_24"}},
    )["saveEndpoint"]
    seen = rest.get(f"/serverless/{saved['id']}").json()
    assert seen["name"] == "ep-gql" and seen["gpu"]["pools"] == ["AMPERE_24"]
    assert seen["image"] == template["image"]
    assert seen["requestUrls"]["run"] == f"{fake.api_base}/{saved['id']}/run"


def test_a_template_is_resolved_once_and_cannot_go_while_bound(
    rest: httpx.Client, fake: RunningFakeRunpod
) -> None:
    template = _template(rest, env={"MODEL": "a"})
    made = _endpoint(rest, templateId=template["id"], image=None)
    assert made["env"] == {"MODEL": "a"} and made["timeout"] == 0  # no timeout: reads 0
    _graphql(
        fake,
        "mutation($i: SaveTemplateInput!) { saveTemplate(input: $i) { id } }",
        {
            "i": {
                "id": template["id"],
                "name": "tpl",
                "imageName": "other:2",
                "containerDiskInGb": 5,
                "volumeInGb": 0,
                "dockerArgs": "",
                "env": [{"key": "MODEL", "value": "b"}],
            }
        },
    )
    after = rest.get(f"/serverless/{made['id']}").json()
    assert after["env"] == {"MODEL": "a"} and after["image"] == template["image"]
    assert fake.state.endpoint_env(made["id"]) == {"MODEL": "a"}

    refused = rest.delete(f"/templates/{template['id']}")
    assert refused.status_code == 400 and "in use" in refused.json()["detail"]
    assert rest.delete(f"/serverless/{made['id']}").status_code == 204
    assert rest.get(f"/serverless/{made['id']}").status_code == 404
    assert rest.delete(f"/templates/{template['id']}").status_code == 204
    assert rest.get(f"/templates/{template['id']}").json()["status"] == 404


def test_account_rules(rest: httpx.Client, fake: RunningFakeRunpod) -> None:
    _template(rest, "same")
    twice = rest.post("/templates", json={"name": "same", "image": "i:1"})
    assert twice.status_code == 400 and "unique" in twice.json()["detail"]

    fake.state.worker_quota = 4
    _endpoint(rest, "ep-a", workers={"max": 3})
    over = rest.post(
        "/serverless",
        json={"name": "ep-b", "image": "i", "type": "QUEUE", "gpu": {"pools": ["ADA_24"]}}
        | {"scaling": SCALING, "workers": {"max": 2}},
    )
    assert over.status_code == 400
    assert over.json()["detail"] == QUOTA_MESSAGE.format(quota=4)

    pinned = _endpoint(
        rest, "ep-c", workers={"max": 1}, gpu={"pools": ["ADA_24"], "excludedTypes": ["NVIDIA L4"]}
    )
    assert pinned["gpu"]["excludedTypes"] == ["NVIDIA L4"]
    widened = rest.patch(f"/serverless/{pinned['id']}", json={"gpu": {"pools": ["ADA_24"]}})
    assert "excludedTypes" not in widened.json()["gpu"]  # pools alone clears exclusions


def test_fault_knobs_reach_rest(rest: httpx.Client, fake: RunningFakeRunpod) -> None:
    fake.state.fail_next(1, 429, retry_after=7, surface="rest", field="createEndpoint")
    limited = rest.post("/serverless", json={})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.headers["RateLimit"].startswith('"minute";r=0;t=7')
    assert "RateLimit-Policy" in limited.headers

    fake.state.lose_answer_next("createEndpoint")
    with pytest.raises(AssertionError):
        _endpoint(rest, "ep-lost")
    assert fake.state.endpoint("ep-lost") is not None  # made, but the answer was a 502

    fake.state.refuse_next("try again later", field="createTemplate")
    refused = rest.post("/templates", json={"name": "t", "image": "i"})
    assert refused.status_code == 400 and refused.json()["detail"] == "try again later"


def _billing(rest: httpx.Client, path: str, **params: str) -> dict[str, Any]:
    """A billing answer, checked against the document here too (the fixture checks after)."""
    answer = rest.get(path, params=params)
    assert answer.status_code == 200, answer.text
    op = match("GET", f"/v2{path}")
    assert op is not None
    assert check_response(op, 200, answer.headers["content-type"], answer.json()) == []
    return answer.json()


def test_billing_serves_the_billed_knob_in_the_documented_shape(
    rest: httpx.Client, fake: RunningFakeRunpod
) -> None:
    workers = {"min": 0, "max": 1}
    one, two = (
        _endpoint(rest, "ep-billed", workers=workers),
        _endpoint(rest, "ep-other", workers=workers),
    )
    fake.state.billed["ep-billed"] = 2.0  # by name: resolved to the endpoint's id
    fake.state.billed[two["id"]] = 0.5
    rest.delete(f"/serverless/{one['id']}")  # billing history outlives the endpoint
    answer = _billing(rest, "/billing/serverless", serverlessId=one["id"])
    [record] = answer["records"]
    assert record["serverlessId"] == one["id"] and record["totalAmount"] == 2.0
    assert (record["gpuAmount"], record["diskAmount"], record["feeAmount"]) == (1.7, 0.1, 0.2)
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    assert record["startTime"] == today
    meta = answer["metadata"]
    assert meta["totals"]["totalAmount"] == 2.0 and meta["recordCount"] == 1
    op = match("GET", "/v2/billing/serverless")
    broken = {**answer, "records": [{k: v for k, v in record.items() if k != "feeAmount"}]}
    assert op is not None and check_response(op, 200, "application/json", broken)  # has teeth
    assert meta["query"]["serverlessId"] == one["id"] and meta["query"]["bucketSize"] == "day"

    everything = _billing(rest, "/billing/serverless", bucketSize="day", lastN="2")
    assert everything["metadata"]["totals"]["totalAmount"] == 2.5
    assert everything["metadata"]["uniqueServerlessCount"] == 2
    assert everything["metadata"]["query"]["endTime"] > today  # the current day included

    window = {"startTime": "2024-12-01T00:00:00Z", "endTime": "2025-01-01T00:00:00Z"}
    past = _billing(rest, "/billing/serverless", **window)
    assert past["records"] == [] and past["metadata"]["totals"]["totalAmount"] == 0
    public = _billing(rest, "/billing/endpoints")
    assert public["records"] == [] and public["metadata"]["totals"] == {"totalAmount": 0}


def test_billing_refuses_what_the_document_refuses(
    rest: httpx.Client, fake: RunningFakeRunpod
) -> None:
    both = rest.get(
        "/billing/serverless", params={"lastN": "3", "startTime": "2026-01-01T00:00:00Z"}
    )
    assert both.status_code == 400 and both.headers["content-type"].startswith(PROBLEM)
    assert "mutually exclusive" in both.json()["detail"]
    assert rest.get("/billing/serverless", params={"lastN": "0"}).status_code == 422
    assert rest.get("/billing/serverless", params={"bucketSize": "fortnight"}).status_code == 422
    fake.state.fail_next(1, 503, surface="rest", field="listServerlessBilling")
    assert rest.get("/billing/serverless").status_code == 503
    assert fake.state.calls_of("listServerlessBilling")
    fake.state.billed["e1"] = 1.0
    fake.state.reset()
    assert fake.state.billed == {}


def test_catalog_workers_and_logs(rest: httpx.Client, fake: RunningFakeRunpod) -> None:
    fake.state.gpu_availability["ADA_24"] = "LOW"
    fake.state.pools_without_capacity = {"AMPERE_80"}
    query = {"include": "AVAILABILITY", "product": "SERVERLESS"}
    gpus = {g["id"]: g for g in rest.get("/catalog/gpus", params=query).json()["gpus"]}
    assert gpus["NVIDIA L4"]["availability"] == "LOW" and gpus["NVIDIA L4"]["pool"] == "ADA_24"
    assert gpus["NVIDIA A100 80GB PCIe"]["availability"] == "NONE"
    assert "serverless" in gpus["NVIDIA L4"]["price"]
    assert rest.get("/catalog/gpus", params={"include": "AVAILABILITY"}).status_code == 400
    bad = rest.get("/catalog/gpus", params={"include": "AVAILABILITY", "product": "BOAT"})
    assert bad.status_code == 422 and bad.json()["errors"]

    made = _endpoint(rest)
    workers = rest.get(f"/serverless/{made['id']}/workers").json()
    assert workers["summary"]["total"] == len(workers["workers"]) == 1
    fake.state.worker_log_lines[made["id"]] = ["one", "two", "three"]
    logs = rest.get(f"/serverless/{made['id']}/workers/{workers['workers'][0]['id']}/logs?tail=2")
    assert logs.headers["content-type"].startswith("text/event-stream")
    assert (
        [line for line in logs.text.splitlines() if line.startswith("data:")]
        == [
            'data: {"ts": "%s", "source": "container", "line": "%s"}' % (ts, text)  # noqa: UP031
            for ts, text in zip(
                [line[4:] for line in logs.text.splitlines() if line.startswith("id: ")],
                ["two", "three"],
                strict=True,
            )
        ]
    )


def test_a_wrong_answer_is_caught_as_a_contract_violation(
    rest: httpx.Client, fake: RunningFakeRunpod, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _endpoint(rest)
    real = runpod_rest_ops.endpoint_v2

    def without_id(*args: Any) -> dict[str, Any]:
        return {k: v for k, v in real(*args).items() if k != "id"}

    monkeypatch.setattr(runpod_rest_ops, "endpoint_v2", without_id)
    answer = rest.get(f"/serverless/{made['id']}")
    assert answer.status_code == 500 and "missing property 'id'" in answer.json()["detail"]
    assert fake.state.contract_violations == ["getEndpoint 200: $: missing property 'id'"]
    fake.state.contract_violations.clear()  # seen: the fixture's check is for the others


def test_routing_follows_the_document(rest: httpx.Client) -> None:
    assert match("GET", "/v2/registries/delegations").operation_id == "listDelegations"
    assert match("GET", "/v2/registries/r1").operation_id == "getRegistry"
    assert match("GET", "/v2/catalog/gpus").operation_id == "listGpuTypes"
    assert rest.get("/pods").status_code == 501  # documented, not served by the fake
    assert rest.put("/serverless").status_code == 405
    assert rest.get("/nowhere").status_code == 404
