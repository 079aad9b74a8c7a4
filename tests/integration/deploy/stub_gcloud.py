"""A stand-in `gcloud` for deploy.sh tests: records each call, remembers what was created.

State (a JSON file named by STUB_STATE) holds resource keys such as
`iam service-accounts visgate-api` and the Firestore composite indexes, so `describe`
answers "exists" exactly for what an earlier `create` made (or a test seeded), and the
TTL policies (`ttls`: Field resources as `gcloud firestore fields ttls list --format=json`
prints them), which `ttls update --enable-ttl` adds as CREATING. Each call
is appended to STUB_LOG as {"argv": [...], "stdin": ...}; stdin is read only for
`--data-file=-`. STUB_NO_AUTH=1 plays a machine with no logged-in account;
STUB_CONFIG_PROJECT is what `gcloud config get-value project` prints.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PROJECT_NUMBER = "123456789012"
VERBS = ("describe", "create", "update", "list", "enable", "submit", "get-value")
VERBS += ("add-iam-policy-binding", "deploy")


def resource_key(words: list[str], flags: dict[str, str]) -> tuple[str, str]:
    verb_at = next(i for i, w in enumerate(words) if w in VERBS)
    group = " ".join(words[:verb_at])
    rest = words[verb_at + 1 :]
    name = rest[0].split("@")[0] if rest else flags.get("database", "")
    return words[verb_at], f"{group} {name}"


def ttl_field(group: str, field: str, state: str) -> dict[str, object]:
    """A Field resource with a TTL policy, as the Firestore Admin API describes it."""
    return {
        "name": f"projects/p/databases/(default)/collectionGroups/{group}/fields/{field}",
        "ttlConfig": {"state": state},
    }


def ttl_group(field: dict[str, object]) -> str:
    return str(field["name"]).split("/collectionGroups/")[1].split("/")[0]


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["STUB_STATE"])
    state = (
        json.loads(state_path.read_text())
        if state_path.exists()
        else {"resources": [], "indexes": []}
    )
    state.setdefault("ttls", [])
    stdin = sys.stdin.read() if "--data-file=-" in argv else None
    with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"argv": argv, "stdin": stdin}) + "\n")

    words = [a for a in argv if not a.startswith("-")]
    flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    joined = " ".join(words)

    if joined.startswith("auth list"):
        if not os.environ.get("STUB_NO_AUTH"):
            print("operator@example.com")
        return 0
    if joined.startswith("config get-value project"):
        print(os.environ.get("STUB_CONFIG_PROJECT", ""))
        return 0
    if joined.startswith("projects describe"):
        print(PROJECT_NUMBER)
        return 0
    if joined.startswith("firestore indexes composite list"):
        print(json.dumps(state["indexes"]))
        return 0
    if joined.startswith("firestore fields ttls list"):
        group = flags.get("collection-group")
        print(json.dumps([f for f in state["ttls"] if group is None or ttl_group(f) == group]))
        return 0
    if joined.startswith("firestore fields ttls update"):
        group, field = flags["collection-group"], words[4]
        state["ttls"] = [f for f in state["ttls"] if ttl_group(f) != group]
        if "--enable-ttl" in argv:
            state["ttls"].append(ttl_field(group, field, "CREATING"))
    elif joined.startswith("firestore indexes composite create"):
        fields = []
        for arg in argv:
            if arg.startswith("--field-config="):
                parts = dict(p.split("=", 1) for p in arg.split("=", 1)[1].split(","))
                fields.append({"fieldPath": parts["field-path"], "order": parts["order"].upper()})
        group = flags["collection-group"]
        state["indexes"].append(
            {
                "name": f"projects/p/databases/(default)/collectionGroups/{group}/indexes/i{len(state['indexes'])}",
                "queryScope": flags.get("query-scope", "collection").upper().replace("-", "_"),
                "fields": [*fields, {"fieldPath": "__name__", "order": fields[-1]["order"]}],
            }
        )
    elif joined.startswith("builds submit"):
        subs = dict(p.split("=", 1) for p in flags["substitutions"].split(","))
        state["resources"].append(f"run services {subs['_SERVICE']}")
    else:
        verb, key = resource_key(words, flags)
        if verb == "describe":
            if key not in state["resources"]:
                print(f"ERROR: (gcloud) NOT_FOUND: {key}", file=sys.stderr)
                return 1
            if joined.startswith("run services describe"):
                name = key.split()[-1]
                print(f"https://{name}-{PROJECT_NUMBER}.{flags['region']}.run.app")
            return 0
        if verb == "create":
            if key in state["resources"]:
                print(f"ERROR: (gcloud) ALREADY_EXISTS: {key}", file=sys.stderr)
                return 1
            state["resources"].append(key)
    state_path.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
