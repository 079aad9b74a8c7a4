"""The control plane image's own command line (read from deploy-api/Dockerfile, so this
test and the image cannot drift) behind a caller who forges `X-Forwarded-For`.

A proxy appends to the header; the caller writes whatever comes before. Cloud Run's front
end is one such proxy, simulated here by a fixed last entry: the limit on unknown API keys
per address must follow that entry, not the caller's, and `/metrics` must never take a
forwarded request for a local scrape."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.stack import Service, Stack, run_stack
from visgate.api.deps import AUTH_FAILURES_PER_MINUTE

ROOT = Path(__file__).resolve().parents[2]
REAL_CLIENT = "198.51.100.7"  # what the front end appends: the caller's real address


def image_command() -> list[str]:
    """The Dockerfile's exec-form CMD."""
    dockerfile = (ROOT / "deploy-api" / "Dockerfile").read_text()
    found = re.search(r"^CMD (\[.*\])\s*$", dockerfile, re.M)
    assert found is not None, "deploy-api/Dockerfile has no exec-form CMD"
    return list(json.loads(found[1]))


def start_image_command(stack: Stack, **env: str) -> Service:
    """Run the CMD as the image would, with Cloud Run's PORT and the venv's `visgate`."""
    log_path = stack.tmp / f"image-{len(stack.services)}.log"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.Popen(
        image_command(),
        env={**stack.env, "PORT": str(stack.port), "PATH": path, **env},
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
        start_new_session=True,
    )
    service = Service(proc, stack.url, log_path)
    stack.services.append(service)
    stack._wait_healthy(service)
    return service


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with run_stack(tmp_path) as s:
        yield s


def _wait_for_a_fresh_window(needed_s: float) -> None:
    """The limit counts per clock minute: start where the minute has `needed_s` left."""
    left = 60 - time.time() % 60
    if left < needed_s:
        time.sleep(left + 0.05)


def test_a_forged_forwarded_address_does_not_escape_the_limit_on_unknown_keys(
    stack: Stack,
) -> None:
    start_image_command(stack)
    _wait_for_a_fresh_window(20)
    with httpx.Client(base_url=stack.url, timeout=10) as client:

        def guess(i: int, real: str = REAL_CLIENT) -> httpx.Response:
            forged = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            return client.get(
                "/v1/models",
                headers={
                    "Authorization": f"Bearer vg_guess_{i}",
                    "X-Forwarded-For": f"{forged}, {real}",
                },
            )

        answers = [guess(i).status_code for i in range(AUTH_FAILURES_PER_MINUTE + 5)]
        assert answers[:AUTH_FAILURES_PER_MINUTE] == [401] * AUTH_FAILURES_PER_MINUTE
        assert set(answers[AUTH_FAILURES_PER_MINUTE:]) == {429}
        # Another real address is its own budget, whatever the caller forges in front.
        assert guess(10**6, real="198.51.100.8").status_code == 401
        ok = client.get(
            "/v1/deployments",
            headers={
                "Authorization": f"Bearer {stack.key['api_key']}",
                "X-Forwarded-For": f"{REAL_CLIENT}, 198.51.100.9",
            },
        )
        assert ok.status_code == 200


def test_metrics_answer_a_local_scraper_but_never_a_forwarded_request(stack: Stack) -> None:
    start_image_command(stack)
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        assert client.get("/metrics").status_code == 200  # a sidecar on this machine
        forwarded = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
        assert forwarded.status_code == 403
        assert forwarded.json()["error"]["type"] == "ForbiddenError"
        assert "visgate_" not in forwarded.text


def test_with_a_metrics_token_every_scraper_must_send_it(stack: Stack) -> None:
    start_image_command(stack, VISGATE_METRICS_TOKEN="scrape-token-0123456789")
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = client.get(
            "/metrics",
            headers={
                "Authorization": "Bearer scrape-token-0123456789",
                "X-Forwarded-For": "1.2.3.4",
            },
        )
        assert good.status_code == 200
        assert "visgate_http_requests_total" in good.text
