"""`SECRETS=secret-manager`: each user secret is one Google Secret Manager secret.

Secret ids are `visgate-<deployment_id>-<name>` (so a retried `put` lands on the same
secret) and carry the label `visgate_deployment=<deployment_id>`, which is how teardown finds
them: `delete_for` lists by label rather than trusting names. Reads go to `versions/latest`
and are cached for a few seconds, since a reconciler step may read the same key many times.
The label key uses `_`, not `-`, so the list filter `labels.KEY=VALUE` holds plain
identifiers only (Secret Manager filter syntax: cloud.google.com/secret-manager/docs/filtering).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from google.api_core import exceptions as gexc
from google.auth.exceptions import DefaultCredentialsError
from google.cloud.secretmanager_v1 import SecretManagerServiceAsyncClient

from visgate.domain.errors import SecretNotFoundError, SecretPermissionError
from visgate.secrets.gcp_errors import async_retrying, map_error
from visgate.secrets.naming import check_ids

log = structlog.get_logger(__name__)

REF_PREFIX = "sm://"
ID_PREFIX = "visgate"
DEPLOYMENT_LABEL = "visgate_deployment"
MANAGED_LABEL = "managed_by"
_CACHE_MAX = 2048


class SecretManagerStore:
    """User secrets in Secret Manager; refs are `sm://projects/P/secrets/ID/versions/latest`.

    `client` is for tests and callers sharing one; a store that builds its own client (with
    application default credentials, on first use so its gRPC channel belongs to the running
    event loop) closes it in `aclose`.
    """

    def __init__(
        self,
        project_id: str,
        *,
        client: SecretManagerServiceAsyncClient | None = None,
        cache_ttl_s: float = 30.0,
        attempts: int = 5,
        backoff_s: float = 0.25,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` times the read cache (seconds, monotonic); a test passes its own to expire
        entries without waiting."""
        if not project_id:
            raise ValueError("SecretManagerStore needs a Google Cloud project id")
        self._project = project_id
        self._client = client
        self._owns_client = client is None
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self._cache: dict[str, tuple[float, str]] = {}

    def __repr__(self) -> str:
        return f"SecretManagerStore(project_id={self._project!r})"

    def secret_id(self, deployment_id: str, name: str) -> str:
        return f"{ID_PREFIX}-{deployment_id}-{name}"

    async def put(self, deployment_id: str, name: str, value: str) -> str:
        check_ids(deployment_id, name)
        parent = f"projects/{self._project}"
        secret_name = f"{parent}/secrets/{self.secret_id(deployment_id, name)}"
        await self._call(
            "create_secret",
            secret_name,
            {
                "parent": parent,
                "secret_id": self.secret_id(deployment_id, name),
                "secret": {
                    "labels": {DEPLOYMENT_LABEL: deployment_id, MANAGED_LABEL: ID_PREFIX},
                    "replication": {"automatic": {}},
                },
            },
            ok=(gexc.AlreadyExists,),  # a retried put: add a version to the same secret
        )
        await self._call(
            "add_secret_version",
            secret_name,
            {"parent": secret_name, "payload": {"data": value.encode("utf-8")}},
        )
        ref = f"{REF_PREFIX}{secret_name}/versions/latest"
        self._remember(ref, value)
        log.info("secret_stored", deployment_id=deployment_id, name=name)
        return ref

    async def get(self, ref: str) -> str:
        version_name = _parse_ref(ref)
        cached = self._cache.get(ref)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        response = await self._call("access_secret_version", version_name, {"name": version_name})
        value = bytes(response.payload.data).decode("utf-8")
        self._remember(ref, value)
        return value

    async def delete_for(self, deployment_id: str) -> None:
        check_ids(deployment_id, "x")
        marker = f"/secrets/{ID_PREFIX}-{deployment_id}-"
        for ref in [r for r in self._cache if marker in r]:
            self._cache.pop(ref, None)
        names = await self._list_names(deployment_id)
        for name in names:
            await self._call("delete_secret", name, {"name": name}, ok=(gexc.NotFound,))
        if names:
            log.info("secrets_deleted", deployment_id=deployment_id, count=len(names))

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.transport.close()
            self._client = None

    # --- internals --------------------------------------------------------------------

    async def _list_names(self, deployment_id: str) -> list[str]:
        """Every secret labelled with the deployment; a failed page restarts the listing."""
        parent = f"projects/{self._project}"
        request = {"parent": parent, "filter": f"labels.{DEPLOYMENT_LABEL}={deployment_id}"}
        client = self._get_client()
        try:
            async for attempt in async_retrying("list_secrets", self._attempts, self._backoff_s):
                with attempt:
                    pager = await client.list_secrets(
                        request=request, retry=None, timeout=self._timeout_s
                    )
                    return [
                        secret.name
                        async for secret in pager
                        if secret.labels.get(DEPLOYMENT_LABEL) == deployment_id
                    ]
        except gexc.GoogleAPICallError as exc:
            raise map_error(exc, action="list_secrets", resource=parent) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _call(
        self,
        action: str,
        resource: str,
        request: dict[str, Any],
        *,
        ok: tuple[type[Exception], ...] = (),
    ) -> Any:
        """One RPC with our retry policy (the library's own retry is off) and error mapping."""
        method = getattr(self._get_client(), action)
        try:
            async for attempt in async_retrying(action, self._attempts, self._backoff_s):
                with attempt:
                    return await method(request=request, retry=None, timeout=self._timeout_s)
        except ok:
            return None
        except gexc.GoogleAPICallError as exc:
            raise map_error(exc, action=action, resource=resource) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _get_client(self) -> SecretManagerServiceAsyncClient:
        if self._client is None:
            try:
                self._client = SecretManagerServiceAsyncClient()
            except DefaultCredentialsError:
                raise SecretPermissionError(
                    "no Google credentials for Secret Manager: run on Cloud Run with a service "
                    "account, or `gcloud auth application-default login` locally"
                ) from None
        return self._client

    def _remember(self, ref: str, value: str) -> None:
        if self._cache_ttl_s <= 0:
            return
        now = self._clock()
        if len(self._cache) >= _CACHE_MAX:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
        self._cache[ref] = (now + self._cache_ttl_s, value)


def _parse_ref(ref: str) -> str:
    if ref.startswith(REF_PREFIX):
        name = ref[len(REF_PREFIX) :]
        parts = name.split("/")
        if (
            len(parts) == 6
            and all(parts)
            and (parts[0], parts[2], parts[4]) == ("projects", "secrets", "versions")
        ):
            return name
    raise SecretNotFoundError(
        f"{ref!r} is not a Secret Manager reference (was it written with SECRETS=local?)"
    )
