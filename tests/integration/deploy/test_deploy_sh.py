"""deploy.sh against a stub `gcloud`: the commands, their order, idempotence, secret hygiene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STUB = Path(__file__).with_name("stub_gcloud.py")
RUNPOD_KEY = "rpa_TESTKEY_never_printed_0123"
GENERATED = "f00dfeed" * 8  # what the stub openssl "generates"
PROJECT = "demo-proj"
READ_ONLY = ("describe", "list", "get-value")


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    calls: list[dict]

    def commands(self) -> list[str]:
        """The lines deploy.sh prints for each command it runs (or would run)."""
        return [line[2:] for line in self.stdout.splitlines() if line.startswith("+ ")]

    def executed(self, first_word: str) -> list[list[str]]:
        return [c["argv"] for c in self.calls if c["argv"][:1] == [first_word]]

    def mutations(self) -> list[list[str]]:
        return [
            c["argv"]
            for c in self.calls
            if not any(verb in c["argv"] for verb in READ_ONLY) and c["argv"][:1] != ["auth"]
        ]


@pytest.fixture
def stub_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STUB}" "$@"\n')
    (bin_dir / "curl").write_text(
        f'#!/bin/sh\necho "curl $*" >> "{tmp_path}/curl.log"\necho \'{{"status":"ok"}}\'\n'
    )
    (bin_dir / "openssl").write_text(f"#!/bin/sh\necho {GENERATED}\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "STUB_STATE": str(tmp_path / "state.json"),
        "STUB_LOG": str(tmp_path / "calls.jsonl"),
        "VISGATE_IMAGE_TAG": "abc123",
        "RUNPOD_API_KEY": RUNPOD_KEY,
    }


def deploy(env: dict[str, str], *args: str, **extra: str | None) -> Run:
    merged = {**env, **extra}
    merged = {k: v for k, v in merged.items() if v is not None}
    log = Path(env["STUB_LOG"])
    log.unlink(missing_ok=True)
    proc = subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), *args],
        env=merged,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return Run(proc.returncode, proc.stdout, proc.stderr, calls)


def assert_in_order(lines: list[str], expected: list[str]) -> None:
    position = 0
    for fragment in expected:
        for i in range(position, len(lines)):
            if fragment in lines[i]:
                position = i + 1
                break
        else:
            pytest.fail(f"{fragment!r} missing or out of order in:\n" + "\n".join(lines))


EXPECTED_ORDER = [
    "gcloud services enable run.googleapis.com firestore.googleapis.com secretmanager.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com",
    "gcloud firestore databases create",
    "gcloud firestore indexes composite create",
    "gcloud firestore indexes composite create",
    "gcloud firestore indexes composite create",
    "gcloud artifacts repositories create visgate --repository-format=docker --location=europe-west1",
    f"gcloud storage buckets create gs://{PROJECT}_cloudbuild",
    "gcloud iam service-accounts create visgate-api",
    "gcloud iam service-accounts create visgate-build",
    f"gcloud iam roles create visgateSecretStore --project={PROJECT}",
    f"--member=serviceAccount:visgate-api@{PROJECT}.iam.gserviceaccount.com --role=roles/datastore.user",
    "--role=roles/run.admin",
    "--role=roles/artifactregistry.writer",
    "--role=roles/iam.serviceAccountUser",
    "gcloud secrets create visgate-internal-webhook-secret",
    "gcloud secrets create visgate-runpod-api-key",
    "--role=roles/secretmanager.secretAccessor",
    "gcloud builds submit . --config=cloudbuild.yaml --region=europe-west1",
    "curl -fsS",
]


def test_dry_run_prints_every_change_in_order_and_makes_none(stub_env: dict[str, str]) -> None:
    run = deploy(stub_env, "--dry-run", "--project", PROJECT, "--region", "europe-west1")

    assert run.rc == 0, run.stderr
    assert_in_order(run.commands(), EXPECTED_ORDER)
    assert run.mutations() == []  # only lookups reached gcloud
    assert not (Path(stub_env["HOME"]) / "curl.log").exists()
    submit = next(c for c in run.commands() if "builds submit" in c)
    for part in (
        "COMMIT_SHA=abc123",
        "_REGION=europe-west1",
        f"_SERVICE_ACCOUNT=visgate-api@{PROJECT}.iam.gserviceaccount.com",
        f"--service-account=projects/{PROJECT}/serviceAccounts/visgate-build@{PROJECT}.iam.gserviceaccount.com",
    ):
        assert part in submit
    assert "https://visgate-api-123456789012.europe-west1.run.app/health" in run.stdout


def test_a_real_run_creates_everything_and_a_second_run_creates_nothing(
    stub_env: dict[str, str], tmp_path: Path
) -> None:
    first = deploy(stub_env, "--project", PROJECT)
    assert first.rc == 0, first.stderr
    created = [a for a in first.mutations() if "create" in a]
    assert len(created) == 14  # db, 5 indexes, repo, bucket, 2 SAs, 2 roles, 2 secrets
    secrets = {
        a[2]: c["stdin"] for c in first.calls if (a := c["argv"])[:2] == ["secrets", "create"]
    }
    assert secrets == {
        "visgate-internal-webhook-secret": GENERATED,
        "visgate-runpod-api-key": RUNPOD_KEY,  # on stdin, no newline
    }
    assert "URL: https://visgate-api-123456789012.us-central1.run.app" in first.stdout
    assert "/health" in (tmp_path / "curl.log").read_text()

    second = deploy(stub_env, "--project", PROJECT)
    assert second.rc == 0, second.stderr
    assert [a for a in second.mutations() if "create" in a] == []
    assert any(a[:3] == ["iam", "roles", "update"] for a in second.executed("iam"))
    for message in (
        "database (default) exists",
        "repository visgate exists",
        "secret visgate-runpod-api-key exists",
    ):
        assert message in second.stdout
    assert any(a[:2] == ["builds", "submit"] for a in second.executed("builds"))  # redeploys


def test_secret_access_is_bound_only_to_the_services_own_secrets(
    stub_env: dict[str, str],
) -> None:
    run = deploy(stub_env, "--project", PROJECT)
    assert run.rc == 0, run.stderr
    bindings = [
        a for a in run.executed("projects") if a[:2] == ["projects", "add-iam-policy-binding"]
    ]
    by_role = {next(x for x in a if x.startswith("--role=")): a for a in bindings}
    # Project-wide: only what cannot be narrowed to secret names (create, list).
    store = by_role[f"--role=projects/{PROJECT}/roles/visgateSecretStore"]
    assert "--condition=None" in store
    roles = {a[3]: a for a in run.executed("iam") if a[:2] == ["iam", "roles"]}
    assert "secretmanager.versions.access" not in " ".join(roles["visgateSecretStore"])
    # Read, write, delete: only secrets named like the ones the service makes.
    access = by_role[f"--role=projects/{PROJECT}/roles/visgateSecretAccess"]
    condition = next(x for x in access if x.startswith("--condition="))
    own = "projects/123456789012/secrets/visgate-"
    assert f'resource.name.startsWith("{own}dep_")' in condition
    assert f'resource.name.startsWith("{own}key_")' in condition
    assert "secretmanager.versions.access" in " ".join(roles["visgateSecretAccess"])


def test_secrets_never_appear_in_output_or_arguments(stub_env: dict[str, str]) -> None:
    for args in (("--dry-run",), ()):
        run = deploy(stub_env, "--project", PROJECT, *args)
        assert run.rc == 0, run.stderr
        for secret in (RUNPOD_KEY, GENERATED):
            assert secret not in run.stdout + run.stderr
            assert all(secret not in " ".join(c["argv"]) for c in run.calls)


def test_only_missing_indexes_are_created(stub_env: dict[str, str]) -> None:
    wanted = json.loads((ROOT / "firestore.indexes.json").read_text())["indexes"]
    first = wanted[0]
    existing = {
        "name": f"projects/{PROJECT}/databases/(default)/collectionGroups/{first['collectionGroup']}/indexes/x",
        "queryScope": first["queryScope"],
        "fields": [*first["fields"], {"fieldPath": "__name__", "order": "DESCENDING"}],
    }
    Path(stub_env["STUB_STATE"]).write_text(json.dumps({"resources": [], "indexes": [existing]}))
    run = deploy(stub_env, "--dry-run", "--project", PROJECT)
    assert run.rc == 0, run.stderr
    creates = [c for c in run.commands() if "indexes composite create" in c]
    assert len(creates) == len(wanted) - 1
    first_configs = [
        f"--field-config=field-path={f['fieldPath']},order={f['order'].lower()}"
        for f in first["fields"]
    ]
    assert all(c.split().count("--field-config") == 0 for c in creates)  # `=` form only
    assert not any(
        [w for w in c.split() if w.startswith("--field-config")] == first_configs for c in creates
    )


def test_a_missing_runpod_key_stops_before_any_change(stub_env: dict[str, str]) -> None:
    run = deploy(stub_env, "--project", PROJECT, RUNPOD_API_KEY=None)
    assert run.rc != 0
    assert "RUNPOD_API_KEY" in run.stderr
    assert run.mutations() == [] and run.commands() == []


def test_no_logged_in_account_is_refused(stub_env: dict[str, str]) -> None:
    run = deploy(stub_env, "--project", PROJECT, STUB_NO_AUTH="1")
    assert run.rc != 0 and "gcloud auth login" in run.stderr
    assert run.mutations() == []


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {"GCP_PROJECT_ID": "from-env"}, "from-env"),
        ((), {"STUB_CONFIG_PROJECT": "from-config"}, "from-config"),
        (("--project=from-flag",), {"GCP_PROJECT_ID": "from-env"}, "from-flag"),
    ],
)
def test_project_comes_from_flag_then_env_then_gcloud_config(
    stub_env: dict[str, str], args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    run = deploy(stub_env, "--dry-run", *args, **env)
    assert run.rc == 0, run.stderr
    assert f"--project={expected}" in next(c for c in run.commands() if "services enable" in c)


def test_no_project_anywhere_is_a_clear_error(stub_env: dict[str, str]) -> None:
    run = deploy(stub_env, "--dry-run")
    assert run.rc != 0 and "--project" in run.stderr


def test_no_cache_reaches_the_build(stub_env: dict[str, str]) -> None:
    run = deploy(stub_env, "--dry-run", "--project", PROJECT, "--no-cache")
    assert "_NO_CACHE=true" in next(c for c in run.commands() if "builds submit" in c)


def test_unknown_flags_are_refused(stub_env: dict[str, str]) -> None:
    run = deploy(stub_env, "--projekt", PROJECT)
    assert run.rc != 0 and "unknown argument: --projekt" in run.stderr
