"""What the Runpod provider puts on the wire, checked without a server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from graphql import parse, validate

from tests.fakes.runpod_state import SCHEMA
from visgate.kit import parse_retry_after
from visgate.providers.base import EndpointSpec
from visgate.providers.runpod import operations as ops
from visgate.providers.runpod.messages import is_in_use, is_not_found, is_quota
from visgate.providers.runpod.payloads import endpoint_input, scaled_to_zero, spec_template_input

SPEC = EndpointSpec(
    name="visgate-d1",
    image="img:1",
    env={"B": "2", "A": "1"},
    gpu_pools=["AMPERE_16", "AMPERE_24", "ADA_24", "AMPERE_48"],
    workers_max=2,
    flashboot=False,
)

DOCUMENTS = [
    ops.LIST_TEMPLATES_DOC,
    ops.LIST_ENDPOINTS_DOC,
    ops.GPU_TYPES_DOC,
    ops.SAVE_TEMPLATE_DOC,
    ops.SAVE_ENDPOINT_DOC,
    ops.DELETE_ENDPOINT_DOC,
    ops.DELETE_TEMPLATE_DOC,
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_operation_is_valid_against_runpods_documented_schema(document: str) -> None:
    assert validate(SCHEMA, parse(document)) == []


def test_an_endpoint_update_carries_every_field() -> None:
    data = endpoint_input(SPEC, "tpl1", "ep1")

    assert data == {
        "id": "ep1",
        "name": "visgate-d1",
        "templateId": "tpl1",
        "gpuIds": "AMPERE_16,AMPERE_24,ADA_24",
        "gpuCount": 1,
        "workersMin": 0,
        "workersMax": 2,
        "idleTimeout": 60,
        "scalerType": "QUEUE_DELAY",
        "scalerValue": 4,
        "flashBootType": "OFF",
        "executionTimeoutMs": 600_000,
    }


def test_a_serverless_template_has_no_volume_and_sends_docker_args() -> None:
    data = spec_template_input(SPEC)

    assert data["isServerless"] is True
    assert data["volumeInGb"] == 0
    assert data["dockerArgs"] == ""
    assert data["env"] == [{"key": "A", "value": "1"}, {"key": "B", "value": "2"}]
    assert "id" not in data


def test_scale_to_zero_resends_the_listed_fields() -> None:
    row = {"id": "ep1", "name": "visgate-d1", "templateId": "tpl1", "gpuIds": "ADA_24",
           "gpuCount": 1, "workersMin": 1, "workersMax": 3, "idleTimeout": 9,
           "scalerType": "REQUEST_COUNT", "scalerValue": 2, "flashBootType": "FLASHBOOT",
           "executionTimeoutMs": 1000}  # fmt: skip

    data = scaled_to_zero(row)

    assert data == {**row, "workersMin": 0, "workersMax": 0}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("0", 0.0), ("garbage", None), (None, None), ("", None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)

    waited = parse_retry_after(format_datetime(when, usegmt=True))

    assert waited is not None and 25 <= waited <= 31


def test_runpods_worker_cap_message_reads_as_quota() -> None:
    # The text Runpod sends (runpod/runpodctl issue #117).
    assert is_quota(
        "Your worker concurrency cannot go beyond the maximum limit of (20). "
        "Please contact support if you wish to scale past this number."
    )
    assert not is_quota("Template name must be unique")
    assert is_not_found("Endpoint not found")
    assert is_in_use("Template is in use by an endpoint")


def test_a_registry_credential_is_sent_only_when_set() -> None:
    with_credential = replace(SPEC, registry_auth_id="cred_1")

    assert spec_template_input(with_credential)["containerRegistryAuthId"] == "cred_1"
    assert "containerRegistryAuthId" not in spec_template_input(SPEC)
