"""Every operation in the app's own OpenAPI document, fuzzed with schema-valid and
schema-breaking input: no 5xx, every 4xx in the one error envelope, every 2xx on its schema.

The SSE route is fuzzed too: its real-id cases use a settled deployment, whose stream ends
after the history, so no case waits on a stream that never closes.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.hostile.fuzzing import fuzz_target, run_all_checks, run_fuzz

MAX_EXAMPLES = 25  # per operation and mode; bench/fuzz.py runs the long version


def test_every_operation_survives_fuzzing(tmp_path: Path) -> None:
    with fuzz_target(tmp_path) as target:
        report = run_fuzz(target, max_examples=MAX_EXAMPLES, seed=0)
    assert len(report.operations) >= 15, report.operations
    assert "GET /v1/deployments/{deployment_id}/events" in report.operations
    assert report.examples >= 200, report.summary()
    # The fuzzer reached the routes' bodies, not only the auth and 404 paths.
    assert {200, 404, 422} <= set(report.statuses), report.summary()
    assert not report.failures, "\n".join([report.summary(), *report.failures[:20]])


def test_every_schemathesis_check_passes(tmp_path: Path) -> None:
    """`--checks all` over every phase: among others, a 405's `Allow` lists every method the
    document gives the path, and no status goes out that the document does not declare."""
    with fuzz_target(tmp_path) as target:
        report = run_all_checks(target, max_examples=10, seed=0)
    assert len(report.operations) >= 15, report.operations
    assert {202, 405, 422} <= set(report.statuses), report.summary()
    assert not report.failures, "\n".join([report.summary(), *report.failures[:20]])
