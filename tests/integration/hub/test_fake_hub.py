"""The fake hub answers the real client the way the hub does (others' tests rely on it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (
    DisabledRepoError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.fakes.hub import GATED_ACCESS_TOKEN, INVALID_TOKEN, VALID_TOKEN, FakeHub


def test_expand_returns_only_the_fields_asked_for(hub: FakeHub) -> None:
    info = HfApi(endpoint=hub.url).model_info(
        "Qwen/Qwen2.5-0.5B-Instruct", expand=["safetensors", "gated"], token=False
    )
    assert info.safetensors is not None and info.safetensors.parameters == {"BF16": 494_032_768}
    assert info.gated is False and info.siblings is None and info.pipeline_tag is None


def test_files_metadata_gives_sibling_sizes(hub: FakeHub) -> None:
    info = HfApi(endpoint=hub.url).model_info(
        "IDEA-Research/grounding-dino-tiny", files_metadata=True, token=False
    )
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    assert sizes["model.safetensors"] == 689_000_000
    assert next(s for s in info.siblings or [] if s.rfilename == "model.safetensors").lfs


@pytest.mark.parametrize(
    ("setup", "call", "error"),
    [
        ({}, ("model_info", "acme/none", False), RepositoryNotFoundError),
        ({"private": True}, ("model_info", "acme/m", VALID_TOKEN), RepositoryNotFoundError),
        ({"disabled": True}, ("model_info", "acme/m", False), DisabledRepoError),
        ({"gated": "auto"}, ("auth_check", "acme/m", False), GatedRepoError),
        ({"gated": "manual"}, ("auth_check", "acme/m", VALID_TOKEN), GatedRepoError),
        ({}, ("model_info", "acme/m", INVALID_TOKEN), HfHubHTTPError),
    ],
)
def test_errors_map_to_the_client_exceptions(
    hub: FakeHub, setup: dict[str, object], call: tuple[str, str, object], error: type
) -> None:
    hub.state.add_model("acme/m", **setup)  # type: ignore[arg-type]
    method, repo, token = call
    with pytest.raises(error) as raised:
        getattr(HfApi(endpoint=hub.url), method)(repo, token=token)
    if error is HfHubHTTPError:
        assert raised.value.response.status_code == 401
        assert not isinstance(raised.value, RepositoryNotFoundError)


def test_unknown_revision(hub: FakeHub) -> None:
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=hub.url).model_info("stabilityai/sdxl-turbo", revision="v9", token=False)


def test_files_with_content_download_through_the_real_client(hub: FakeHub, tmp_path: Path) -> None:
    hub.state.add_model(
        "acme/m",
        gated="auto",
        files={"config.json": b'{"ok": true}'},
        tokens_with_access={GATED_ACCESS_TOKEN},
    )
    path = hf_hub_download(
        "acme/m", "config.json", endpoint=hub.url, cache_dir=tmp_path, token=GATED_ACCESS_TOKEN
    )
    assert Path(path).read_bytes() == b'{"ok": true}'
    with pytest.raises(GatedRepoError):
        hf_hub_download(
            "acme/m", "config.json", endpoint=hub.url, cache_dir=tmp_path / "x", token=False
        )
