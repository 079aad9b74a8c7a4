"""Lint gates (shellcheck, yamllint) and cloudbuild.yaml's steps run as Cloud Build would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
STUB = Path(__file__).with_name("stub_gcloud.py")
BUILTINS = {
    "PROJECT_ID": "demo-proj",
    "PROJECT_NUMBER": "123456789012",
    "BUILD_ID": "b-1",
    "LOCATION": "europe-west1",
    "COMMIT_SHA": "0123abc",
    "SHORT_SHA": "0123abc",
}


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing from the virtualenv: pip install -e '.[dev]'")
    return str(path)


def test_shell_scripts_pass_shellcheck() -> None:
    scripts = [ROOT / "deploy.sh", *sorted((ROOT / "scripts").glob("*.sh"))]
    proc = subprocess.run(
        [tool("shellcheck"), *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cloudbuild_passes_yamllint() -> None:
    proc = subprocess.run(
        [tool("yamllint"), "-s", "cloudbuild.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def build_config() -> dict:
    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def substitute(text: str, values: dict[str, str]) -> str:
    """Cloud Build's rule: `$NAME`/`${NAME}` replaced, `$$` a literal `$`; any other
    `$NAME` (a shell variable someone forgot to escape) fails the build, so KeyError here."""
    text = text.replace("$$", "\0")
    text = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m.group(1) or m.group(2)], text)
    return text.replace("\0", "$")


def step_scripts(values: dict[str, str]) -> dict[str, str]:
    scripts = {}
    for step in build_config()["steps"]:
        assert step.get("entrypoint") == "bash" and step["args"][0] == "-c", step["id"]
        scripts[step["id"]] = substitute(step["args"][1], values)
    return scripts


def values(**overrides: str) -> dict[str, str]:
    return {**BUILTINS, **build_config()["substitutions"], **overrides}


def test_every_substitution_used_is_declared_or_built_in() -> None:
    step_scripts(values())  # KeyError names the first unknown one
    for image in build_config()["images"]:
        substitute(image, values())


@pytest.mark.parametrize("step_id", ["check", "build-api", "build-worker", "deploy"])
def test_each_step_is_valid_bash_after_substitution(step_id: str) -> None:
    script = step_scripts(values())[step_id]
    proc = subprocess.run(
        [tool("shellcheck"), "-s", "bash", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout


def run_deploy_step(tmp_path: Path, **subs: str) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gcloud").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STUB}" "$@"\n')
    (bin_dir / "gcloud").chmod(0o755)
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STUB_STATE": str(tmp_path / "state.json"),
        "STUB_LOG": str(log),
    }
    script = step_scripts(values(**subs))["deploy"]
    proc = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    (call,) = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    return call


def flag(argv: list[str], name: str) -> str:
    return next(a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}="))


def test_deploy_step_runs_cloud_run_as_the_design_needs(tmp_path: Path) -> None:
    argv = run_deploy_step(tmp_path, _REGION="europe-west1")
    assert argv[:3] == ["run", "deploy", "visgate-api"]
    for required in ("--no-cpu-throttling", "--min-instances=1", "--allow-unauthenticated"):
        assert required in argv
    assert flag(argv, "image") == "europe-west1-docker.pkg.dev/demo-proj/visgate/api:0123abc"
    assert flag(argv, "service-account") == "visgate-api@demo-proj.iam.gserviceaccount.com"
    env = dict(kv.split("=", 1) for kv in flag(argv, "set-env-vars").split(","))
    assert env == {
        "STORE": "firestore",
        "SECRETS": "secret-manager",
        "GCP_PROJECT_ID": "demo-proj",
        "PUBLIC_BASE_URL": "https://visgate-api-123456789012.europe-west1.run.app",
        "LOG_LEVEL": "info",
        "RUNPOD_TEMPLATE_IMAGE": "europe-west1-docker.pkg.dev/demo-proj/visgate/worker:0123abc",
        "RUNPOD_API": "graphql",
    }
    secrets = dict(kv.split("=", 1) for kv in flag(argv, "set-secrets").split(","))
    assert secrets == {
        "INTERNAL_WEBHOOK_SECRET": "visgate-internal-webhook-secret:latest",
        "RUNPOD_API_KEY": "visgate-runpod-api-key:latest",
    }


def test_deploy_step_takes_overrides(tmp_path: Path) -> None:
    argv = run_deploy_step(
        tmp_path,
        _PUBLIC_BASE_URL="https://api.example.com",
        _SERVICE_ACCOUNT="custom@demo-proj.iam.gserviceaccount.com",
        _RUNPOD_REGISTRY_AUTH_ID="cred123",
        _RUNPOD_API="rest",
    )
    env = dict(kv.split("=", 1) for kv in flag(argv, "set-env-vars").split(","))
    assert env["PUBLIC_BASE_URL"] == "https://api.example.com"
    assert env["RUNPOD_API"] == "rest"
    assert env["RUNPOD_REGISTRY_AUTH_ID"] == "cred123"
    assert flag(argv, "service-account") == "custom@demo-proj.iam.gserviceaccount.com"


def test_the_image_starts_the_serve_command_a_local_run_uses() -> None:
    """The image runs `visgate serve`, so its server options (proxy headers, shutdown
    grace) are the local ones; tests/e2e/test_image_command_line.py runs that command."""
    dockerfile = (ROOT / "deploy-api" / "Dockerfile").read_text()
    assert re.search(
        r"^CMD .*exec visgate serve --host 0\.0\.0\.0 --port \$\{PORT", dockerfile, re.M
    )
    assert "uvicorn" not in dockerfile.split("\nCMD ", 1)[1]
    proc = subprocess.run(
        [sys.executable, "-m", "visgate", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^USER (?!root|0)", dockerfile, re.M), "the image must not run as root"


def test_the_image_has_two_stages_a_healthcheck_and_no_wheels_in_a_layer() -> None:
    dockerfile = (ROOT / "deploy-api" / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) == 2
    assert re.search(r"^HEALTHCHECK .*\n?.*/health", dockerfile, re.M)
    assert "COPY --from=builder" not in dockerfile  # wheels are bind-mounted, not copied
    # The dependency layer is built before the sources are copied in.
    assert dockerfile.index("pip wheel --wheel-dir /wheels .") < dockerfile.index("COPY src")
