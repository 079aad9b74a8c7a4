"""The shared template bootstrap (function and script) and the GPU list."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.runpod import RunningFakeRunpod
from visgate.providers.runpod import RunpodProvider
from visgate.providers.runpod.bootstrap import ensure_shared_template, list_gpu_types

SCRIPT = Path(__file__).resolve().parents[4] / "scripts" / "create_runpod_template.py"


async def test_creates_then_updates_the_same_template(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    first_id, _ = await ensure_shared_template(
        provider, name="visgate-worker", image="img:1", env={"A": "1"},
        container_disk_gb=40, api_key=api_key,
    )  # fmt: skip
    second_id, _ = await ensure_shared_template(
        provider, name="visgate-worker", image="img:2", env={"A": "2"},
        container_disk_gb=50, api_key=api_key,
    )  # fmt: skip

    assert second_id == first_id
    assert fake.state.creations("template") == [first_id]
    template = fake.state.template("visgate-worker")
    assert template["imageName"] == "img:2"
    assert template["containerDiskInGb"] == 50
    assert template["isServerless"] is True
    assert template["env"] == [{"key": "A", "value": "2"}]


async def test_dry_run_changes_nothing_and_hides_secrets(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    template_id, planned = await ensure_shared_template(
        provider, name="visgate-worker", image="img:1",
        env={"HF_TOKEN": "hf_secretvalue", "EAGER_LOAD_ALL": "1"},
        container_disk_gb=40, api_key=api_key, dry_run=True,
    )  # fmt: skip

    assert template_id is None
    assert fake.state.calls_of("saveTemplate") == []
    assert [p.name for p in planned] == ["ListTemplates", "SaveTemplate"]
    rendered = "\n".join(p.render() for p in planned)
    assert "saveTemplate(input: $input)" in rendered
    assert '"imageName": "img:1"' in rendered
    assert '"EAGER_LOAD_ALL"' in rendered
    assert "hf_secretvalue" not in rendered
    assert api_key not in rendered


async def test_gpu_types_are_listed_smallest_first(provider: RunpodProvider, api_key: str) -> None:
    types = await list_gpu_types(provider, api_key=api_key)

    memories = [t.memory_gb for t in types]
    assert memories == sorted(memories)
    assert "NVIDIA H100 80GB HBM3" in {t.id for t in types}


def _script(fake: RunningFakeRunpod, *args: str, key: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RUNPOD_API_KEY": key,
        "RUNPOD_GRAPHQL_URL": fake.graphql_url,
        "RUNPOD_TEMPLATE_IMAGE": "ghcr.io/visgate/worker:2.0",
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_script_prints_the_template_id_and_is_idempotent(
    fake: RunningFakeRunpod, api_key: str
) -> None:
    first = _script(fake, "--env", "EAGER_LOAD_ALL=1", key=api_key)
    second = _script(fake, "--env", "EAGER_LOAD_ALL=0", key=api_key)

    assert first.returncode == 0, first.stderr
    template = fake.state.template("visgate-worker")
    assert first.stdout.strip() == f"RUNPOD_TEMPLATE_ID={template['id']}"
    assert second.stdout == first.stdout
    assert template["env"] == [{"key": "EAGER_LOAD_ALL", "value": "0"}]
    assert len(fake.state.creations("template")) == 1


def test_script_dry_run_prints_graphql_with_the_key_redacted(
    fake: RunningFakeRunpod, api_key: str
) -> None:
    result = _script(fake, "--dry-run", key=api_key)

    assert result.returncode == 0, result.stderr
    assert "mutation SaveTemplate($input: SaveTemplateInput!)" in result.stdout
    assert "Authorization: Bearer [redacted]" in result.stdout
    assert "ghcr.io/visgate/worker:2.0" in result.stdout
    assert api_key not in result.stdout + result.stderr
    assert fake.state.template("visgate-worker") is None


def test_script_with_a_bad_key_fails_with_a_clear_line(fake: RunningFakeRunpod) -> None:
    result = _script(fake, key="rp_not_valid")

    assert result.returncode == 1
    assert result.stderr.startswith("RunpodAuthError:")
    assert "rp_not_valid" not in result.stderr


def _visgate(fake: RunningFakeRunpod, *args: str, key: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNPOD_API_KEY": key, "RUNPOD_GRAPHQL_URL": fake.graphql_url}
    return subprocess.run(
        [sys.executable, "-m", "visgate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_template_create_matches_the_script(fake: RunningFakeRunpod, api_key: str) -> None:
    result = _visgate(fake, "template", "create", "--image", "img:3", key=api_key)

    assert result.returncode == 0, result.stderr
    template = fake.state.template("visgate-worker")
    assert result.stdout.strip() == f"RUNPOD_TEMPLATE_ID={template['id']}"
    assert template["imageName"] == "img:3"


@pytest.mark.parametrize("command", ["gpus", "runpod-gpus"])
def test_cli_lists_the_account_gpu_types(
    fake: RunningFakeRunpod, api_key: str, command: str
) -> None:
    result = _visgate(fake, command, key=api_key)

    assert result.returncode == 0, result.stderr
    assert "NVIDIA H100 80GB HBM3" in result.stdout
