"""Schema-driven fuzzing of the app's own OpenAPI document, shared by the CI test and
`bench/fuzz.py` (same checks, different budgets), in two runs.

`run_fuzz` drives each operation with positive (schema-valid) and negative (schema-breaking)
cases. An answer fails when it is a 5xx, a 4xx outside the one error envelope, or a 2xx that
does not match its documented schema. Failures are collected, not raised, so one run reports
them all and hypothesis does not spend the budget shrinking.

`run_all_checks` is schemathesis's own engine with every check on (`--checks all`), as an
outside reviewer runs it: undeclared status codes, `Allow` headers, stateful links and the
rest.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis import strategies as st
from schemathesis import GenerationMode, engine
from schemathesis.engine import events as engine_events
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.integration.api.conftest import api_settings
from visgate.api.app import create_app
from visgate.auth.api_keys import issue_key
from visgate.domain.deployment import ErrorInfo
from visgate.services import Services, build_services

# Streams that never settle would hold a fuzz case open until its read timeout.
SSE_PATH = "/v1/deployments/{deployment_id}/events"


@dataclass
class FuzzReport:
    operations: list[str] = field(default_factory=list)
    examples: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"operations={len(self.operations)} examples={self.examples} "
            f"failures={len(self.failures)} seconds={self.seconds:.1f} statuses={{{codes}}}"
        )


@dataclass
class FuzzTarget:
    """The app on SQLite with a key and two real deployments to aim path parameters at."""

    app: Any
    services: Services
    auth: dict[str, str]
    live_id: str  # `validating`: DELETE and the jobs routes may act on it
    settled_id: str  # `failed`: its event stream ends at once, so SSE can be fuzzed


@contextmanager
def fuzz_target(tmp_path: Path) -> Iterator[FuzzTarget]:
    """Build the app in-process; the ASGI client owns its lifespan on its own event loop."""
    settings = api_settings(tmp_path, RATE_LIMIT_PER_MINUTE=10**9, LOG_LEVEL="error")
    services = build_services(settings, provider=False, hub=False)
    app = create_app(services=services, run_reconciler=False)
    key = asyncio.run(issue_key(services, "fuzzer"))
    auth = {"Authorization": f"Bearer {key.api_key}"}
    with asgi.get_client(app) as client:
        ids = []
        for _ in range(2):
            resp = client.post("/v1/deployments", json={"hf_model_id": "a/b"}, headers=auth)
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["deployment_id"])

        def fail(dep: Any) -> bool:
            dep.fail(time.time(), ErrorInfo(type="FuzzSetupError", message="settled on purpose"))
            return True

        asyncio.run(services.store.deployments.mutate(ids[1], fail))
        try:
            yield FuzzTarget(app, services, auth, live_id=ids[0], settled_id=ids[1])
        finally:
            asgi.shutdown_lifespans()
            asyncio.run(services.aclose())


def envelope_problem(response: Any) -> str | None:
    """Why a 4xx answer is not the one error envelope (README, "API"), or None."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"non-JSON body {response.content[:120]!r}"
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return f"not an envelope: {str(body)[:200]}"
    error = body["error"]
    for name in ("type", "message", "request_id"):
        if not isinstance(error.get(name), str) or not error[name]:
            return f"error.{name} missing or empty: {error}"
    echoed = response.headers.get("x-request-id")
    if isinstance(echoed, list):  # schemathesis keeps every value of a header
        echoed = echoed[0] if echoed else None
    if error["request_id"] != echoed:
        return "error.request_id differs from the X-Request-ID header"
    if response.status_code == 422 and not isinstance(error.get("fields"), list):
        return "422 without a fields list"
    extra = set(error) - {"type", "message", "request_id", "fields"}
    if extra:
        return f"unexpected keys {sorted(extra)}"
    return None


def _strategy(target: FuzzTarget, operation: Any, mode: GenerationMode) -> Any:
    """Random path ids (mostly 404) mixed with real ones, so the routes' bodies run too."""
    strategies = [operation.as_strategy(generation_mode=mode)]
    if "deployment_id" in operation.path:
        real = target.settled_id if operation.path == SSE_PATH else target.live_id
        strategies.append(
            operation.as_strategy(generation_mode=mode, path_parameters={"deployment_id": real})
        )
    return st.one_of(strategies)


def _headers(target: FuzzTarget, operation: Any, case: Any) -> dict[str, str]:
    if operation.path.startswith("/internal/"):
        dep_id = str((case.path_parameters or {}).get("deployment_id", ""))
        return {"Authorization": f"Bearer {target.services.callback_tokens.token(dep_id)}"}
    return dict(target.auth)


def _judge(case: Any, response: Any) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.content[:300]!r}"
    if 400 <= status < 500:
        return envelope_problem(response)
    if 200 <= status < 300:
        try:
            case.validate_response(
                response, checks=[response_schema_conformance, content_type_conformance]
            )
        except (AssertionError, BaseExceptionGroup) as exc:  # one failure, or a group
            return f"{status} off-schema: {str(exc)[:400]}"
    return None


def _one_case(
    target: FuzzTarget,
    client: Any,
    operation: Any,
    label: str,
    report: FuzzReport,
    timeout_s: float,
) -> Any:
    def one(case: Any) -> None:
        headers = _headers(target, operation, case)
        try:
            response = case.call(session=client, headers=headers, timeout=timeout_s)
        except Exception as exc:  # the client refused to send (e.g. a bad header)
            report.failures.append(f"{label}: call raised {exc!r}"[:500])
            return
        report.examples += 1
        code = response.status_code
        report.statuses[code] = report.statuses.get(code, 0) + 1
        problem = _judge(case, response)
        if problem:
            report.failures.append(f"{label} [{case.method} {case.formatted_path}]: {problem}")

    return one


def run_fuzz(
    target: FuzzTarget,
    *,
    max_examples: int,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    seed: int | None = 0,
    skip_paths: frozenset[str] = frozenset(),
    timeout_s: float = 5.0,
) -> FuzzReport:
    """Fuzz every operation of the app's schema; `seed=None` explores a fresh random stream."""
    report = FuzzReport()
    started = time.perf_counter()
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app)
    with asgi.get_client(target.app) as client:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path in skip_paths:
                continue
            label = f"{operation.method.upper()} {operation.path}"
            report.operations.append(label)
            for mode in modes:
                test = hypothesis.given(_strategy(target, operation, mode))(
                    _one_case(target, client, operation, label, report, timeout_s)
                )
                test = hypothesis.settings(
                    max_examples=max_examples,
                    deadline=None,
                    database=None,
                    derandomize=seed is not None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                    verbosity=Verbosity.quiet,
                )(test)
                try:
                    test()
                except hypothesis.errors.Unsatisfiable:
                    pass  # nothing to negate: an operation with no inputs has no negative cases
    report.seconds = time.perf_counter() - started
    return report


# Rules a JSON Schema cannot state, so a schema-valid request may rightly get a 422: a cursor
# must be one this service issued, an Idempotency-Key may not be reused with another body,
# `region` and `gpu_tier` must name a known data centre or tier, `max_workers` must fit the
# tenant's quota. Every other operation must accept all schema-valid input.
BUSINESS_RULE_PATHS = ("/v1/deployments",)
_POSITIVE_WITH_RULES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]


@schemathesis.check
def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is the one error envelope (README, "API")."""
    if 400 <= response.status_code < 500 and (problem := envelope_problem(response)):
        raise AssertionError(problem)
    return None


def _all_checks_config(max_examples: int, seed: int | None) -> Any:
    rules = {"positive_data_acceptance": {"expected-statuses": _POSITIVE_WITH_RULES}}
    return schemathesis.Config.from_dict(
        {
            **({"seed": seed} if seed is not None else {}),
            "generation": {"max-examples": max_examples},
            "operations": [{"include-path": p, "checks": rules} for p in BUSINESS_RULE_PATHS],
        }
    )


def run_all_checks(target: FuzzTarget, *, max_examples: int, seed: int | None = 0) -> FuzzReport:
    """Every schemathesis check (`--checks all`: status codes, headers, `Allow`, positive and
    negative data, stateful links, the envelope above) over every phase: examples, coverage
    (undeclared methods, missing headers), fuzzing and stateful runs.

    The SSE route is left out: a stream that follows a live deployment stays open by design,
    which the response-time check reads as a hang; `run_fuzz` covers it on a settled one."""
    report = FuzzReport()
    started = time.perf_counter()
    config = _all_checks_config(max_examples, seed)
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app, config=config)
    schema = schema.exclude(path=SSE_PATH)
    schema.config.update(headers=target.auth)
    schema.config.checks.update(included_check_names=["all"])
    for event in engine.from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioStarted) and event.label:
            report.operations.append(event.label)
        if isinstance(event, engine_events.NonFatalError | engine_events.FatalError):
            report.failures.append(f"error: {event}"[:500])
        if not isinstance(event, engine_events.ScenarioFinished):
            continue
        recorder = event.recorder
        for case_id, interaction in recorder.interactions.items():
            if interaction.response is not None:
                code = interaction.response.status_code
                report.statuses[code] = report.statuses.get(code, 0) + 1
                report.examples += 1
        for case_id, checks in recorder.checks.items():
            case = recorder.cases[case_id].value
            for check in checks:
                if check.failure_info is not None:
                    failure = check.failure_info.failure
                    report.failures.append(
                        f"{recorder.label} [{case.method} {case.formatted_path}] {check.name}:"
                        f" {failure.title}: {failure.message}"[:600]
                    )
    report.operations = sorted(set(report.operations))
    report.seconds = time.perf_counter() - started
    return report
