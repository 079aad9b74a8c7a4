"""`Idempotency-Key` for POST, after the IETF httpapi draft and Stripe's practice.

Same key and body within 24 h: the first answer again, no second deployment. Same key,
other body: 422. Same key while the first request is still running: 409. Keys are
scoped per tenant. The first request holds the key for as long as it runs (it renews its
claim), so a slow create is never run twice; one that died without answering holds it only
until its claim's lease runs out (60 s), not for the day. A first request that failed
gives its key back so a retry can run. Whatever fails after the deployment is written (the
answer's own write, the process), a retry answers with that deployment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from visgate.domain.deployment import Deployment, new_deployment_id
from visgate.domain.errors import IdempotencyConflictError, VisgateError
from visgate.logging import get_logger
from visgate.store.base import Transaction, renewing
from visgate.store.idempotency import IdempotencyRepository

log = get_logger(__name__)


def _public(dep: Deployment) -> dict[str, Any]:
    return dep.public()


class IdempotentCall:
    def __init__(
        self,
        records: IdempotencyRepository,
        tenant: str,
        key: str,
        fingerprint: str,
        *,
        render: Callable[[Deployment], dict[str, Any]] = _public,
    ) -> None:
        self.records = records
        self.tenant = tenant
        self.key = key
        self.fingerprint = fingerprint
        self.render = render  # the answer for a deployment the key made
        self.token: str | None = None  # set once this request holds the key
        self.deployment_id: str | None = None  # what this request creates

    async def begin(self) -> dict[str, Any] | None:
        """None: this request owns the key and runs. A dict: the answer to replay."""
        claim = await self.records.claim(
            self.tenant, self.key, self.fingerprint, new_deployment_id()
        )
        if claim.token is not None:
            self.token, self.deployment_id = claim.token, claim.deployment_id
            return None
        existing = claim.record
        assert existing is not None
        if existing.fingerprint != self.fingerprint:
            raise IdempotencyConflictError(
                "this Idempotency-Key was used with a different request body"
            )
        if claim.deployment is not None:  # made, its answer never stored: answer it now
            return self.render(claim.deployment)
        if existing.state != "done" or existing.response is None:
            raise IdempotencyConflictError(
                "a request with this Idempotency-Key is still in progress; retry shortly",
                in_flight=True,
            )
        return existing.response

    def _token(self) -> str:
        if self.token is None:
            raise RuntimeError("this request does not hold its Idempotency-Key")
        return self.token

    def held(self) -> AbstractAsyncContextManager[None]:
        """Keep the key's claim while the body (the create) runs, however long it takes."""
        token = self._token()
        return renewing(
            lambda: self.records.renew(self.tenant, self.key, token),
            every=self.records.claim_lease_s / 3,
        )

    @property
    def guard(self) -> Callable[[Transaction], Awaitable[None]]:
        """The check the deployment record's write makes: this request still holds the key."""
        return self.records.guard(self.tenant, self.key, self._token())

    async def complete(self, status_code: int, response: dict[str, Any]) -> None:
        """Store the answer for replays. A failure is logged, not raised: the deployment
        exists and is answered now, and a retry finds it through the claim."""
        try:
            await self.records.complete(
                self.tenant, self.key, status_code, response, token=self._token()
            )
        except VisgateError as exc:
            log.warning("idempotency_complete_failed", error_type=exc.type, error=exc.message)

    async def abandon(self) -> None:
        """Give this request's own claim back (never a takeover's, never one whose
        deployment exists). A failure is logged: the claim's lease runs out instead."""
        if self.token is None:
            return
        try:
            await self.records.abandon(self.tenant, self.key, token=self.token)
        except VisgateError as exc:
            log.warning("idempotency_abandon_failed", error_type=exc.type, error=exc.message)
