"""The operator's shared worker template (`visgate template create`,
scripts/create_runpod_template.py) and the live GPU list (`visgate gpus`).

`ensure_shared_template` is idempotent: a template of that name is updated in place
(saveTemplate with its id), never duplicated. With `dry_run` it sends no mutation and
returns the documents and variables it would send, for review.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from gql.graphql_request import GraphQLRequest

from visgate.providers.base import GpuType
from visgate.providers.runpod import operations as ops
from visgate.providers.runpod.graphql_api import RunpodGraphQL
from visgate.providers.runpod.payloads import gpu_type, template_input
from visgate.providers.runpod.provider import RunpodProvider

REDACTED = "[redacted]"
SECRET_NAME = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PlannedOperation:
    """One request (GraphQL or REST) as it would go on the wire (secrets already redacted)."""

    name: str
    document: str
    variables: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {REDACTED}"})

    def render(self) -> str:
        lines = [f"# {self.name}"]
        lines += [f"# {k}: {v}" for k, v in self.headers.items()]
        lines += [self.document.strip(), json.dumps(self.variables, indent=2, sort_keys=True)]
        return "\n".join(lines)


def _client(provider_or_client: RunpodProvider | RunpodGraphQL) -> RunpodGraphQL:
    if isinstance(provider_or_client, RunpodProvider):
        return provider_or_client.graphql
    return provider_or_client


def _plan(request: GraphQLRequest, document: str, variables: dict[str, Any]) -> PlannedOperation:
    return PlannedOperation(ops.operation_name(request), document, _redact_env(variables))


def _redact_env(variables: dict[str, Any]) -> dict[str, Any]:
    """A copy whose env values with secret-sounding names read `[redacted]`."""
    if "input" not in variables or "env" not in variables["input"]:
        return variables
    env = [
        {"key": e["key"], "value": REDACTED if SECRET_NAME.search(e["key"]) else e["value"]}
        for e in variables["input"]["env"]
    ]
    return {**variables, "input": {**variables["input"], "env": env}}


async def ensure_shared_template(
    provider_or_client: RunpodProvider | RunpodGraphQL,
    *,
    name: str,
    image: str,
    env: dict[str, str],
    container_disk_gb: int,
    api_key: str,
    dry_run: bool = False,
) -> tuple[str | None, list[PlannedOperation]]:
    """Create or update the serverless template `name` for `image`.

    Returns the template id (None on a dry run that found no template) and the operations
    sent, or to be sent on a dry run. A dry run with a key still reads the template list
    (a query, no change) to tell a create from an update; without a key it reads nothing.
    """
    client = _client(provider_or_client)

    async def plan(*, retry: bool) -> tuple[str | None, list[PlannedOperation], dict[str, Any]]:
        existing_id: str | None = None
        if api_key:
            data = await client.execute(ops.LIST_TEMPLATES, api_key=api_key, retry=retry)
            rows = (data.get("myself") or {}).get("podTemplates") or []
            existing_id = next((str(t["id"]) for t in rows if t and t.get("name") == name), None)
        variables = {
            "input": template_input(
                name=name,
                image=image,
                env=env,
                container_disk_gb=container_disk_gb,
                template_id=existing_id,
            )
        }
        planned = [
            _plan(ops.LIST_TEMPLATES, ops.LIST_TEMPLATES_DOC, {}),
            _plan(ops.SAVE_TEMPLATE, ops.SAVE_TEMPLATE_DOC, variables),
        ]
        return existing_id, planned, variables

    if dry_run:
        existing_id, planned, _ = await plan(retry=True)
        return existing_id, planned

    async def once() -> tuple[str, list[PlannedOperation]]:
        # Looked up again on every try, so a lost answer to a create is not repeated.
        _, planned, variables = await plan(retry=False)
        data = await client.execute(ops.SAVE_TEMPLATE, variables, api_key=api_key, retry=False)
        return str(data["saveTemplate"]["id"]), planned

    return await client.policy.run(once, what="ensure_shared_template")


async def list_gpu_types(
    provider_or_client: RunpodProvider | RunpodGraphQL, *, api_key: str
) -> list[GpuType]:
    """Runpod's GPU types, smallest memory first (for `visgate gpus`)."""
    data = await _client(provider_or_client).execute(ops.GPU_TYPES, api_key=api_key)
    types = [gpu_type(row) for row in data.get("gpuTypes") or [] if row and row.get("id")]
    return sorted(types, key=lambda g: (g.memory_gb, g.display_name))
