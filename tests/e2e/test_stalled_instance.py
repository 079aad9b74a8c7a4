"""An instance that stalls mid-step (a frozen VM: SIGSTOP) past its lease must not leave a
GPU endpoint nobody knows about.

Instance A claims the deployments and is inside a create call when it freezes. Its
leases run out; the user DELETEs through instance B, which tears down what it finds by
name and writes `deleted`. Runpod then carries out A's call and answers it; A wakes up
with the answer in hand and goes on. Whatever A makes from then on is on the Runpod
account under the deployment's name, billing, unless something removes it: the user must
find nothing called `visgate-<id>` left, every deployment still `deleted` (through either
instance) and no `deployment.ready` webhook after `deployment.deleted`.

Two stalls, each on SQLite (both processes on one file) and on the Firestore emulator, with
the operator's Runpod key and with a key the user brought (B deletes that key's secret, A
still holds it in memory):

- in the template create, the first call of the create step: Runpod makes the template
  only once B's teardown is over (it found nothing to remove), so A's answer names a
  template nobody else knows of, and an old A went on to make the endpoint and queue its
  warm-up job (`made-after-delete`); or Runpod made the template at once and only its
  answer waits, so B's teardown removes it (`made-before-delete`);
- in the warm-up job's submission, after the endpoint was made (B's teardown removes it,
  and the fake worker's `ready` callback reaches A only after the delete).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.runpod_knobs import Hold
from tests.support.firestore_emulator import free_port
from tests.support.receivers import FakeWorker
from tests.support.stack import Service, Stack, emulator_host_for, run_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

COUNT = 3
LEASE_S = 3.0  # A's leases run out a few seconds into its stall
USER_KEY = "rp_user_5e6f7a8b9c0d1e2f"
SETTLE_WITHIN_S = 60.0  # after A wakes, how long it (and B) may take to leave nothing behind
QUIET_S = 1.5  # no Runpod call for this long: A is done with what it woke up to

KEYS = ["operator-key", "user-key"]
LOG_EVENTS = re.compile(
    r"runpod_|lease|stale|step_|status_changed|sweep|warmup|teardown|delete|Traceback|Error"
)


def _key_body(key: str) -> dict[str, Any]:
    """The POST body's key: none (the operator's RUNPOD_API_KEY is used) or the user's."""
    return {"user_runpod_key": USER_KEY if key == "user-key" else None}


def _leftovers(stack: Stack, ids: list[str]) -> dict[str, list[str]]:
    """What the Runpod account still holds under these deployments' names."""
    names = {f"visgate-{i}" for i in ids}
    state = stack.runpod.state
    with state.lock:
        endpoints = sorted(
            f"{e['name']} ({e['id']})" for e in state.endpoints.values() if e["name"] in names
        )
        templates = sorted(
            f"{t['name']} ({t['id']})" for t in state.templates.values() if t["name"] in names
        )
    return {k: v for k, v in (("endpoints", endpoints), ("templates", templates)) if v}


def _logs(*services: Service) -> str:
    """The lines of each service's log that tell what its steps did, for a failure message."""
    out = []
    for name, service in zip("AB", services, strict=False):
        lines = [ln for ln in service.log_text().splitlines() if LOG_EVENTS.search(ln)]
        out.append(f"--- instance {name} ({len(lines)} lines) ---\n" + "\n".join(lines[-60:]))
    return "\n".join(out)


class _Quiet:
    """True once nothing is left on Runpod and no Runpod call came for QUIET_S: the woken
    instance has finished what its answers let it do (a late create would show)."""

    def __init__(self, stack: Stack, ids: list[str]) -> None:
        self.stack, self.ids = stack, ids
        self.calls = len(stack.runpod.state.calls)
        self.since = time.monotonic()

    def __call__(self) -> bool:
        calls = len(self.stack.runpod.state.calls)
        if calls != self.calls:
            self.calls, self.since = calls, time.monotonic()
        if _leftovers(self.stack, self.ids):
            return False
        return time.monotonic() - self.since >= QUIET_S


def _stall_delete_wake(
    stack: Stack, hold: Hold, key: str, *, made_on_release: bool
) -> tuple[list[str], Service, Service]:
    """A takes COUNT deployments into the held call and freezes; B deletes them all; Runpod
    then lets A's held calls go on; A wakes. Returns the ids and the two services."""
    # A alone claims everything. Idle polls far apart: a frozen process caught inside a
    # write transaction would hold the SQLite file (or a Firestore document) from B.
    a = stack.start(VISGATE_POLL_INTERVAL="5")
    with stack.client(a.url) as via_a:
        ids = [stack.deploy(via_a, **_key_body(key)) for _ in range(COUNT)]
    try:
        wait_for(
            lambda: len(hold.caught) >= COUNT,
            within=30,
            what=f"A's {COUNT} {hold.field} calls reaching the fake Runpod",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_logs(a)}") from None
    hold.stop_catching()  # later calls (B's) go through at once; A's stay held
    if hold.field == "saveTemplate":
        assert hold.names() == {f"visgate-{i}" for i in ids}, hold.names()
    # B starts while A still holds every lease (it claims nothing yet), so the DELETEs
    # below land the moment A freezes.
    b = stack.start(port=free_port())
    a.pause()
    try:
        with stack.client(b.url) as via_b:
            for dep_id in ids:
                resp = via_b.delete(f"/v1/deployments/{dep_id}")
                assert resp.status_code == 204, resp.text
            try:
                stack.wait_all(via_b, ids, {"deleted"}, timeout=30)
            except AssertionError as exc:
                raise AssertionError(
                    f"B never finished the DELETEs: {exc}\n{_logs(a, b)}"
                ) from None
        # B's teardown is over: it removed what it found (if anything) by name.
        left = _leftovers(stack, ids)
        assert not left, f"B's teardown left {left} behind\n{_logs(a, b)}"
        hold.release()  # Runpod carries out A's calls; the answers wait in A's sockets
        wait_for(
            lambda: hold.let_through >= COUNT,
            within=10,
            what="the fake Runpod carrying out A's held calls",
        )
        if made_on_release:
            wait_for(
                lambda: len(_leftovers(stack, ids).get("templates", [])) == COUNT,
                within=10,
                what="the fake Runpod making A's templates",
            )
    finally:
        hold.release()  # (already, unless something above failed)
        a.resume()
    return ids, a, b


def _assert_nothing_left(stack: Stack, ids: list[str], a: Service, b: Service) -> None:
    """What the user sees once A has woken up: nothing on Runpod, `deleted` everywhere, no
    `ready` webhook after the `deleted` one."""
    quiet = _Quiet(stack, ids)
    try:
        wait_for(quiet, within=SETTLE_WITHIN_S, what="nothing of the deleted deployments left")
    except AssertionError:
        left = _leftovers(stack, ids)
        raise AssertionError(
            f"{SETTLE_WITHIN_S:g} s after the stalled instance woke up, the Runpod account "
            f"still holds resources of deployments the user deleted (they bill): {left}\n"
            f"endpoints ever created: {stack.runpod.state.created_names('endpoint')}\n"
            f"warm-up jobs queued: {len(stack.runpod.state.jobs)}\n{_logs(a, b)}"
        ) from None
    assert a.proc.poll() is None, f"instance A died after waking:\n{_logs(a)}"

    for name, service in (("A", a), ("B", b)):
        with stack.client(service.url) as client:
            for dep_id in ids:
                try:
                    resp = client.get(f"/v1/deployments/{dep_id}")
                except httpx.HTTPError as exc:
                    raise AssertionError(f"reading {dep_id} through {name}: {exc}") from None
                assert resp.status_code == 200, (name, dep_id, resp.text)
                status = resp.json()["status"]
                assert status == "deleted", (
                    f"{dep_id} reads {status!r} through instance {name} after the user "
                    f"deleted it and the stalled instance woke up\n{_logs(a, b)}"
                )

    deleted_key, ready_key = "{}:deployment.deleted".format, "{}:deployment.ready".format
    wait_for(
        lambda: all(stack.receiver.by_event().get(deleted_key(i)) for i in ids),
        within=20,
        what="a deployment.deleted webhook for each deployment",
    )
    events = stack.receiver.by_event()
    for dep_id in ids:
        deleted_at = min(d.at for d in events[deleted_key(dep_id)])
        late = [d.at - deleted_at for d in events.get(ready_key(dep_id), []) if d.at > deleted_at]
        assert not late, (
            f"{dep_id}: deployment.ready webhook(s) {late} s after deployment.deleted\n"
            f"{_logs(a, b)}"
        )


# The leak on every store and key; the variants that guard the fix once each (CI time).
def _case(store: str, *rest: str) -> Any:
    marks = [pytest.mark.firestore] if store == "firestore" else []
    return pytest.param(store, *rest, marks=marks, id="-".join((store, *rest)))


TEMPLATE_CASES = [
    *[_case(store, key, "made-after-delete") for store in ("sqlite", "firestore") for key in KEYS],
    _case("sqlite", "user-key", "made-before-delete"),
]
WARMUP_CASES = [_case("sqlite", "user-key"), _case("firestore", "operator-key")]


@pytest.mark.parametrize(("store", "key", "runpod"), TEMPLATE_CASES)
def test_instance_stalled_in_template_create_leaves_nothing_after_delete(
    tmp_path: Path, store: str, key: str, runpod: str, request: pytest.FixtureRequest
) -> None:
    """`made-after-delete`: Runpod takes A's template creates in and carries them out only
    when released, after B's teardown (which found nothing): the leak. `made-before-delete`:
    the templates are made at once and only the answers wait, so B's teardown removes them
    and A's answers name templates that are gone."""
    late = runpod == "made-after-delete"
    with run_stack(
        tmp_path,
        store=store,
        emulator_host=emulator_host_for(store, request),
        VISGATE_LEASE_SECONDS=str(LEASE_S),
    ) as stack:
        stack.runpod.state.api_keys.add(USER_KEY)
        hold = stack.runpod.state.hold("saveTemplate", commit_first=not late)
        ids, a, b = _stall_delete_wake(stack, hold, key, made_on_release=late)
        _assert_nothing_left(stack, ids, a, b)


@pytest.mark.parametrize(("store", "key"), WARMUP_CASES)
def test_instance_stalled_in_warmup_submit_leaves_nothing_after_delete(
    tmp_path: Path, store: str, key: str, request: pytest.FixtureRequest
) -> None:
    # The fake worker starts on the warm-up job and calls A back 2 s later: A is frozen
    # then, and reads the `ready` only after the user's delete.
    with run_stack(
        tmp_path,
        store=store,
        emulator_host=emulator_host_for(store, request),
        worker=FakeWorker(delay=2.0),
        VISGATE_LEASE_SECONDS=str(LEASE_S),
    ) as stack:
        stack.runpod.state.api_keys.add(USER_KEY)
        # The endpoint exists; the warm-up job's `/run` waits at the fake.
        hold = stack.runpod.state.hold("run", surface="serverless")
        ids, a, b = _stall_delete_wake(stack, hold, key, made_on_release=False)
        assert sorted(stack.runpod.state.created_names("endpoint")) == sorted(
            f"visgate-{i}" for i in ids
        ), "A made one endpoint per deployment before it froze"
        # The workers' `ready` callbacks reach A after the delete, and are answered.
        wait_for(
            lambda: set(ids) <= stack.worker.reported,
            within=30,
            what="A answering the fake workers' ready callbacks",
        )
        _assert_nothing_left(stack, ids, a, b)
