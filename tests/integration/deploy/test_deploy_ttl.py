"""deploy.sh enables a Firestore TTL policy on `expire_at` for every expiring collection
group, once: against the stub `gcloud` of test_deploy_sh.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.deploy.stub_gcloud import ttl_field
from tests.integration.deploy.test_deploy_sh import PROJECT, deploy
from tests.integration.deploy.test_deploy_sh import stub_env as stub_env  # the fixture
from visgate.store.firestore_expiry import EXPIRING_KINDS, TTL_FIELD


def ttl_updates(argvs: list[list[str]]) -> dict[str, list[str]]:
    """The `ttls update` calls (or printed commands, split), by collection group."""
    found = {}
    for argv in argvs:
        words = argv[argv.index("gcloud") + 1 :] if "gcloud" in argv else argv
        if words[:4] == ["firestore", "fields", "ttls", "update"]:
            group = next(a for a in words if a.startswith("--collection-group="))
            found[group.split("=", 1)[1]] = words
    return found


def test_a_fresh_project_gets_a_ttl_policy_per_expiring_collection(
    stub_env: dict[str, str],
) -> None:
    run = deploy(stub_env, "--project", PROJECT)
    assert run.rc == 0, run.stderr

    updates = ttl_updates([c["argv"] for c in run.calls])
    assert set(updates) == set(EXPIRING_KINDS)  # the kinds the store writes `expire_at` on
    for group, argv in updates.items():
        assert argv[4] == TTL_FIELD
        for flag in (
            "--enable-ttl",
            f"--collection-group={group}",
            "--database=(default)",
            f"--project={PROJECT}",
        ):
            assert flag in argv
    # After the database, in the Firestore step.
    commands = run.commands()
    database = next(i for i, c in enumerate(commands) if "firestore databases create" in c)
    ttls = [i for i, c in enumerate(commands) if "firestore fields ttls update" in c]
    assert len(ttls) == len(EXPIRING_KINDS) and min(ttls) > database


def test_a_second_run_leaves_the_policies_alone(stub_env: dict[str, str]) -> None:
    assert deploy(stub_env, "--project", PROJECT).rc == 0
    second = deploy(stub_env, "--project", PROJECT)
    assert second.rc == 0, second.stderr
    assert ttl_updates([c["argv"] for c in second.calls]) == {}
    for group in EXPIRING_KINDS:
        assert f"TTL policy on {group}.{TTL_FIELD} is CREATING" in second.stdout


def test_only_missing_or_broken_policies_are_requested(stub_env: dict[str, str]) -> None:
    active, broken = sorted(EXPIRING_KINDS)[:2]
    seeded = [ttl_field(active, TTL_FIELD, "ACTIVE"), ttl_field(broken, TTL_FIELD, "NEEDS_REPAIR")]
    state = {"resources": [], "indexes": [], "ttls": seeded}
    Path(stub_env["STUB_STATE"]).write_text(json.dumps(state))

    run = deploy(stub_env, "--project", PROJECT)
    assert run.rc == 0, run.stderr
    assert set(ttl_updates([c["argv"] for c in run.calls])) == set(EXPIRING_KINDS) - {active}
    assert f"TTL policy on {active}.{TTL_FIELD} is ACTIVE" in run.stdout


def test_a_dry_run_prints_the_policies_and_sets_none(stub_env: dict[str, str]) -> None:
    run = deploy(stub_env, "--dry-run", "--project", PROJECT)
    assert run.rc == 0, run.stderr
    assert set(ttl_updates([c.split() for c in run.commands()])) == set(EXPIRING_KINDS)
    assert ttl_updates([c["argv"] for c in run.calls]) == {}
    assert any(c["argv"][:4] == ["firestore", "fields", "ttls", "list"] for c in run.calls)
