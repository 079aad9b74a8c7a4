"""Every answer a deployment can get from validation, driven through the real client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fakes.hub import GATED_ACCESS_TOKEN, INVALID_TOKEN, VALID_TOKEN, FakeHub
from visgate.domain.errors import (
    HuggingFaceDisabledModelError,
    HuggingFaceGatedModelError,
    HuggingFaceInvalidTokenError,
    HuggingFaceModelNotFoundError,
    HuggingFaceUnsupportedModelError,
    ValidationError,
    VisgateError,
)
from visgate.hub import HubValidator

WEIGHTS = [("config.json", 500), ("model.safetensors", 2_000_000_000)]
FINE_GRAINED_TOKEN = "hf_fake_fine_grained_other_repos"


@dataclass
class Case:
    name: str
    repo: dict[str, Any] | None  # add_model kwargs for "acme/model"; None: no such repo
    token: str | None
    error: type[VisgateError] | None = None
    says: list[str] = field(default_factory=list)  # words the message must contain


CASES = [
    Case("public, no token", {"siblings": WEIGHTS}, None),
    Case("public, valid token", {"siblings": WEIGHTS}, VALID_TOKEN),
    Case("missing", None, None, HuggingFaceModelNotFoundError, ["not found", "hf_token"]),
    Case("missing, with token", None, VALID_TOKEN, HuggingFaceModelNotFoundError, ["not found"]),
    Case(
        "private, no token",
        {"private": True, "siblings": WEIGHTS, "tokens_with_access": {"hf_owner"}},
        None,
        HuggingFaceModelNotFoundError,
        ["hf_token"],
    ),
    Case(
        "private, token without access",
        {"private": True, "siblings": WEIGHTS, "tokens_with_access": {"hf_owner"}},
        VALID_TOKEN,
        HuggingFaceModelNotFoundError,
        ["no access"],
    ),
    Case(
        "private, token with access",
        {"private": True, "siblings": WEIGHTS, "tokens_with_access": {VALID_TOKEN}},
        VALID_TOKEN,
    ),
    Case(
        "gated, no token",
        {"gated": "auto", "siblings": WEIGHTS, "tokens_with_access": {GATED_ACCESS_TOKEN}},
        None,
        HuggingFaceGatedModelError,
        ["gated", "hf_token"],
    ),
    Case(
        "gated manual, token without access",
        {"gated": "manual", "siblings": WEIGHTS, "tokens_with_access": {GATED_ACCESS_TOKEN}},
        VALID_TOKEN,
        HuggingFaceGatedModelError,
        ["gated", "hf_token", "https://huggingface.co/acme/model"],
    ),
    Case(
        "gated, token with access",
        {"gated": "auto", "siblings": WEIGHTS, "tokens_with_access": {GATED_ACCESS_TOKEN}},
        GATED_ACCESS_TOKEN,
    ),
    Case(
        "invalid token",
        {"siblings": WEIGHTS},
        INVALID_TOKEN,
        HuggingFaceInvalidTokenError,
        ["hf_token"],
    ),
    Case(
        "disabled",
        {"disabled": True, "siblings": WEIGHTS},
        None,
        HuggingFaceDisabledModelError,
        ["disabled"],
    ),
    Case(
        "disabled, answered 200 with disabled: true",
        {"disabled": True, "disabled_status": 200, "siblings": WEIGHTS},
        None,
        HuggingFaceDisabledModelError,
        ["disabled"],
    ),
    Case(
        "fine-grained token without access to the repo (403, no error code)",
        {"siblings": WEIGHTS, "tokens_forbidden": {FINE_GRAINED_TOKEN}},
        FINE_GRAINED_TOKEN,
        HuggingFaceModelNotFoundError,
        ["no access", "hf_token"],
    ),
    Case(
        "gated, fine-grained token without access to the repo",
        {
            "gated": "manual",
            "siblings": WEIGHTS,
            "tokens_with_access": {GATED_ACCESS_TOKEN},
            "tokens_forbidden": {FINE_GRAINED_TOKEN},
        },
        FINE_GRAINED_TOKEN,
        HuggingFaceModelNotFoundError,
        ["no access"],
    ),
    Case(
        "no weights at all",
        {"siblings": [("README.md", 100), ("config.json", 500)]},
        None,
        HuggingFaceUnsupportedModelError,
        ["no safetensors or PyTorch weight"],
    ),
    Case(
        "GGUF only",
        {"siblings": [("model-q4_k_m.gguf", 4_000_000_000)]},
        None,
        HuggingFaceUnsupportedModelError,
        ["gguf"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_outcome(case: Case, hub: FakeHub, validator: HubValidator) -> None:
    if case.repo is not None:
        hub.state.add_model("acme/model", **case.repo)
    if case.error is None:
        check = await validator.check("acme/model", case.token)
        assert check.model_id == "acme/model"
        assert check.vram_gb > 2.0
        assert check.gated == bool(case.repo and case.repo.get("gated"))
        return
    with pytest.raises(case.error) as raised:
        await validator.check("acme/model", case.token)
    message = raised.value.message
    for word in case.says:
        assert word in message
    if case.token:
        assert case.token not in message and case.token not in repr(raised.value)


async def test_gated_without_token_is_refused_without_asking_auth_check(
    hub: FakeHub, validator: HubValidator
) -> None:
    with pytest.raises(HuggingFaceGatedModelError):
        await validator.check("black-forest-labs/FLUX.1-dev", None)
    assert hub.state.count("/auth-check") == 0


async def test_no_token_means_no_credentials_sent_even_with_hf_token_in_env(
    hub: FakeHub, validator: HubValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_operator_token_must_not_leak")
    await validator.check("stabilityai/sdxl-turbo", None)
    assert [r.authorized for r in hub.requests] == [False]


async def test_an_invalid_repo_id_is_a_validation_error(validator: HubValidator) -> None:
    with pytest.raises(ValidationError):
        await validator.check("not a repo id!", None)


async def test_registry_models_keep_their_measured_vram_and_report_hub_gating(
    validator: HubValidator,
) -> None:
    flux = await validator.check("black-forest-labs/FLUX.1-schnell", GATED_ACCESS_TOKEN)
    assert (flux.source, flux.vram_gb, flux.gated) == ("registry", 40.0, True)
    assert flux.library_name == "diffusers" and flux.tasks == ["text-to-image"]
    sdxl = await validator.check("stabilityai/sdxl-turbo", None)
    assert (sdxl.source, sdxl.vram_gb, sdxl.gated) == ("registry", 10.0, False)


async def test_registry_ids_match_case_insensitively(validator: HubValidator) -> None:
    check = await validator.check("StabilityAI/SDXL-Turbo", None)
    assert check.source == "registry" and check.vram_gb == 10.0
