"""The control plane against wire-level fakes, one `visgate serve` started (tests/support/stack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack, run_stack


@pytest.fixture
def runpod_api() -> str:
    """Which Runpod API the service drives; a module parametrises it to run both."""
    return "graphql"


@pytest.fixture
def stack(tmp_path: Path, runpod_api: str) -> Iterator[Stack]:
    with run_stack(tmp_path, RUNPOD_API=runpod_api) as s:
        s.start()
        yield s
