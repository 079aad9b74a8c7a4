"""The `SecretStore` protocol: user secrets (Runpod key, HF token) kept out of the record.

The deployment record holds only the opaque reference `put` returns. Rules every backend
keeps: `get` of a deleted or unknown ref raises `SecretNotFoundError`; `delete_for` removes
every secret of a deployment and succeeds when there is none; values never appear in
logs, errors or reprs.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class SecretStore(Protocol):
    async def put(self, deployment_id: str, name: str, value: str) -> str:
        """Store `value` as secret `name` of the deployment; return its reference."""
        ...

    async def get(self, ref: str) -> str: ...

    async def delete_for(self, deployment_id: str) -> None: ...

    async def aclose(self) -> None: ...
