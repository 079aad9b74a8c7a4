"""The README's quickstart as written: the `run` target of the Makefile starts the service
(SQLite, local provider, demo models) in a scratch folder, then each command of the README's
"Quickstart (no cloud account)" block runs there in bash, and its human output is checked."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.firestore_emulator import free_port
from tests.support.local_serve import stop_local_workers, wait_healthy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
README_HEADING = "## Quickstart (no cloud account)"
# Settings a developer's shell may carry that `make run` would pick up: the test starts from
# none of them, so only the Makefile and the README decide.
CLEARED_PREFIXES = ("VISGATE_", "RUNPOD_", "HF_", "FIRESTORE_", "GCP_", "WEBHOOK_")
CLEARED_NAMES = {
    "STORE",
    "SECRETS",
    "PROVIDER",
    "PUBLIC_BASE_URL",
    "INTERNAL_WEBHOOK_SECRET",
    "LOG_LEVEL",
    "MODEL_CACHE_DIR",
    "RATE_LIMIT_PER_MINUTE",
    "READY_TIMEOUT_SECONDS",
}


def readme_quickstart() -> tuple[list[str], list[str]]:
    """(export lines, command lines) of the README's quickstart bash block."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(README_HEADING) :]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, f"no bash block under {README_HEADING!r}"
    lines = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    exports = [line for line in lines if line.startswith("export ")]
    commands = [line for line in lines if not line.startswith(("export ", "#"))]
    return exports, commands


@dataclass
class MakeRun:
    """What `make run` does, read from the Makefile: its exported defaults, its set-up lines
    and the `visgate serve` line with its env assignments."""

    defaults: dict[str, str]
    setup: list[str]
    serve: str


def makefile_run() -> MakeRun:
    text = (REPO / "Makefile").read_text()
    defaults = dict(re.findall(r"^export (\w+) \?= (\S+)$", text, re.MULTILINE))
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert recipe, "no `run` target in the Makefile"
    lines = []
    for raw in recipe.group(1).splitlines():
        line = raw.strip().lstrip("@").replace("$(BIN)", ".venv/bin").replace("$$", "$")
        if line and not line.startswith("echo"):
            lines.append(line)
    serve = [line for line in lines if "visgate serve" in line]
    assert len(serve) == 1, lines
    return MakeRun(defaults, [line for line in lines if line not in serve], serve[0])


@dataclass
class Quickstart:
    cwd: Path
    env: dict[str, str]
    url: str
    exports: list[str]

    def bash(
        self, line: str, *, exports: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """One README line in bash, after the README's `export` lines, as a reader would."""
        script = "\n".join([*(self.exports if exports is None else exports), line])
        return subprocess.run(
            ["/bin/bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quickstart]:
    """A scratch "clone" (the repository's .venv linked in) where the Makefile's `run` recipe
    runs: the dev key is created into .visgate/, then `visgate serve` starts."""
    cwd = tmp_path_factory.mktemp("clone")
    (cwd / ".venv").symlink_to(REPO / ".venv")
    make = makefile_run()
    port = free_port()
    # The Makefile serves on 8080, which is also PUBLIC_BASE_URL's default (where the worker
    # calls back). The test takes a free port instead (8080 may be in use, suites may run
    # side by side), so PUBLIC_BASE_URL must follow it: the one setting the test adds.
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(CLEARED_PREFIXES) and k not in CLEARED_NAMES
    }
    env = {**base, **make.defaults, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    for line in make.setup:
        done = subprocess.run(
            ["/bin/bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (line, done.stderr)
    assert (cwd / ".visgate" / "dev-key.json").exists()
    serve_line = re.sub(r"--port \d+", f"--port {port}", make.serve)
    log = (cwd / "serve.log").open("wb")
    proc = subprocess.Popen(
        ["/bin/bash", "-c", serve_line],  # the group is stopped as one
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    exports, _ = readme_quickstart()
    assert any("http://127.0.0.1:8080" in line for line in exports), exports
    exports = [line.replace("http://127.0.0.1:8080", url) for line in exports]
    try:
        yield Quickstart(cwd=cwd, env=env, url=url, exports=exports)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
        stop_local_workers(cwd / ".visgate" / "local-endpoints.json")


def _subcommand(line: str) -> str:
    """`deploy`, `jobs run`, `list`, ... of a README line `.venv/bin/visgate ...`."""
    words = shlex.split(line, comments=True)
    assert words[0].endswith("visgate"), line
    return " ".join(words[1:3]) if words[1] == "jobs" else words[1]


PHASE_ROW = re.compile(r"^\s*\S*\s+([a-z_]+)\s+(\d+\.\d) s\b", re.MULTILINE)


def test_readme_quickstart_end_to_end(quickstart: Quickstart) -> None:
    _, commands = readme_quickstart()
    expected = ["deploy", "jobs run", "list", "logs", "cost", "delete"]
    assert [_subcommand(c) for c in commands] == expected
    dep_id = ""
    for line in commands:
        step = _subcommand(line)
        if "<deployment_id>" in line:
            assert dep_id, f"{line!r} needs the id the deploy printed"
            line = line.replace("<deployment_id>", dep_id)
        done = quickstart.bash(line)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        if step == "deploy":
            dep_id = _check_deploy(done)
        elif step == "jobs run":
            _check_job(done)
        elif step == "list":
            assert re.search(rf"^\S+ {dep_id} .* ready ", done.stdout, re.MULTILINE), done.stdout
        elif step == "logs":
            assert "worker ready" in done.stdout
            assert re.search(r"\d{4}-\d\d-\d\dT\S+\s+validating", done.stdout), done.stdout
        elif step == "cost":  # the local worker priced as its pool would be on Runpod
            line = " ".join(done.stdout.split())
            assert re.search(
                rf"^{dep_id}: \$\d+\.\d{{4}}/h now \(1 worker\); spent \$\d+\.\d{{4}} \(estimated\)",
                line,
            ), line
        elif step == "delete":
            assert re.fullmatch(rf"{dep_id}: (deleting|deleted)\n", done.stdout), done.stdout
    _check_records(quickstart, dep_id)


def _check_deploy(done: subprocess.CompletedProcess[str]) -> str:
    """The live table's last frame (stderr): every phase with its time, then the total."""
    times = dict(PHASE_ROW.findall(done.stderr))
    for phase in ("validating", "selecting_gpu", "creating_endpoint", "loading_model", "total"):
        assert phase in times, (phase, done.stderr)
    assert re.search(r"✓\s+ready\b", done.stderr), done.stderr
    # each row shows the line its own status change wrote, a long one wrapped, not cut
    notes = " ".join(done.stderr.split())
    found_on_hub = r"selecting_gpu \d+\.\d s model found on the hub; needs about \d+\.\d GB"
    assert re.search(found_on_hub, notes), done.stderr
    assert notes.count("GPU pools, in order:") == 1, done.stderr
    assert re.search(r"✓ ready worker ready: \S+(, \S+)* loaded total ", notes), done.stderr
    total = float(times.pop("total"))
    assert abs(sum(float(t) for t in times.values()) - total) < 0.1 * len(times) + 0.05
    assert re.search(r"^ready: endpoint local-\w+", done.stdout, re.MULTILINE), done.stdout
    found = re.search(r"^next: visgate jobs run (dep_[0-9a-f]{16}) --text", done.stdout, re.M)
    assert found, done.stdout
    return found.group(1)


def _check_job(done: subprocess.CompletedProcess[str]) -> None:
    """The parts table: one row per quadruped part, with its point and face counts."""
    assert re.search(r"^\s*6 parts", done.stdout, re.MULTILINE), done.stdout
    for part in ("head", "body", "front_legs", "back_legs", "tail", "neck"):
        row = re.search(rf"│ {part}\s+│ (\d+)\s+│ (\d+)\s+│", done.stdout)
        assert row and int(row.group(1)) > 0 and int(row.group(2)) > 0, (part, done.stdout)
    assert "path: primary" in done.stdout and "concept: quadruped" in done.stdout


def _check_records(quickstart: Quickstart, dep_id: str) -> None:
    """The same deployment through --json: its log in order, a JSON job, deleted in the end."""
    status = json.loads(quickstart.bash(f".venv/bin/visgate status {dep_id} --json").stdout)
    statuses = [line["status"] for line in status["logs"]]
    assert (
        statuses.index("validating") < statuses.index("creating_endpoint") < statuses.index("ready")
    )
    assert status["endpoint_id"]
    listed = json.loads(quickstart.bash(".venv/bin/visgate list --json").stdout)
    assert dep_id in [d["deployment_id"] for d in listed["items"]]

    def status_now() -> str:
        answer = quickstart.bash(f".venv/bin/visgate status {dep_id} --json").stdout
        return str(json.loads(answer)["status"])

    wait_for(lambda: status_now() == "deleted", what=f"{dep_id} being deleted")


def test_json_job_and_human_deploy_of_the_same_model(quickstart: Quickstart) -> None:
    deployed = quickstart.bash(".venv/bin/visgate deploy lumen/3d-pipeline --wait --json")
    assert deployed.returncode == 0, deployed.stderr
    dep = json.loads(deployed.stdout)
    assert dep["status"] == "ready" and dep["endpoint_id"]
    job = quickstart.bash(
        f'.venv/bin/visgate jobs run {dep["deployment_id"]} --text "a small red fox" --json'
    )
    assert job.returncode == 0, job.stderr
    result = json.loads(job.stdout)
    assert result["status"] == "COMPLETED"
    names = [part["name"] for part in result["output"]["parts"]]
    assert "head" in names and "tail" in names
    bad = quickstart.bash(f'.venv/bin/visgate jobs run {dep["deployment_id"]} --text "!!!"')
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("ValidationError: invalid input: text: "), bad.stderr
    quickstart.bash(f".venv/bin/visgate delete {dep['deployment_id']}")


def test_client_errors_print_type_and_message_not_a_traceback(quickstart: Quickstart) -> None:
    missing = quickstart.bash(".venv/bin/visgate status dep_0000000000000000")
    assert missing.returncode == 1
    assert "DeploymentNotFoundError" in missing.stderr and "Traceback" not in missing.stderr
    bad = quickstart.bash(".venv/bin/visgate deploy not-a-repo-id")
    assert bad.returncode == 1 and "ValidationError" in bad.stderr
    nokey = quickstart.bash(
        ".venv/bin/visgate list", exports=[*quickstart.exports, "export VISGATE_API_KEY=wrong"]
    )
    assert nokey.returncode == 1 and "UnauthorizedError" in nokey.stderr
    # the README's commands without its `export VISGATE_API_KEY=...` line
    without_key = [line for line in quickstart.exports if "VISGATE_API_KEY" not in line]
    unset = quickstart.bash(".venv/bin/visgate list", exports=without_key)
    assert unset.returncode == 1 and "Traceback" not in unset.stderr
    assert unset.stderr == "UnauthorizedError: set VISGATE_API_KEY (see `visgate keys create`)\n"
