"""One error tree for the whole service.

Every error a user can see is a `VisgateError`: its class name is the wire `type`, its
`status_code` the HTTP answer, and `transient` tells the reconciler to retry later rather
than fail the deployment. Messages never carry secrets.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VisgateError(Exception):
    status_code: ClassVar[int] = 500
    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message}


class TransientError(VisgateError):
    """Worth retrying later: upstream 429/5xx, timeouts, a store hiccup."""

    status_code = 503
    transient = True


# --- request-level errors -------------------------------------------------------------


class ValidationError(VisgateError):
    status_code = 422

    def __init__(self, message: str, fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or []

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "fields": self.fields}


class UnauthorizedError(VisgateError):
    status_code = 401


class ForbiddenError(VisgateError):
    """The caller is known (or need not be) but may not use this route from where it is."""

    status_code = 403


class DeploymentNotFoundError(VisgateError):
    status_code = 404


class NotFoundError(VisgateError):
    status_code = 404


class RateLimitedError(VisgateError):
    status_code = 429


class QuotaExceededError(VisgateError):
    """Over a tenant quota (deployments or workers). No Retry-After: waiting does not free a
    slot, deleting a deployment (or a higher quota) does."""

    status_code = 429


class IdempotencyConflictError(VisgateError):
    """Same Idempotency-Key with another body (422) or while the first is in flight (409)."""

    status_code = 422

    def __init__(self, message: str, *, in_flight: bool = False) -> None:
        super().__init__(message)
        self.in_flight = in_flight
        if in_flight:
            self.status_code = 409  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        """The 422 names the offending input like every 422 (`fields`); the 409 is about
        timing, not input, so it has none."""
        if self.in_flight:
            return super().to_dict()
        field = {"field": "Idempotency-Key", "message": "already used with a different body"}
        return {**super().to_dict(), "fields": [field]}


class PayloadTooLargeError(VisgateError):
    status_code = 413


class DeploymentNotReadyError(VisgateError):
    status_code = 409


class ConflictError(VisgateError):
    status_code = 409


class StaleWriteError(ConflictError):
    """An optimistic update lost the race: the record changed since it was read."""


class LeaseLostError(ConflictError):
    """The reconciler's lease on a record expired or was taken; its result is dropped."""


class IllegalTransitionError(VisgateError):
    """A write tried a status move the transition table forbids: always a bug."""

    status_code = 500


# --- Hugging Face ---------------------------------------------------------------------


class HuggingFaceError(VisgateError):
    status_code = 422


class HuggingFaceModelNotFoundError(HuggingFaceError):
    status_code = 404


class HuggingFaceGatedModelError(HuggingFaceError):
    status_code = 403


class HuggingFaceInvalidTokenError(HuggingFaceError):
    status_code = 401


class HuggingFaceDisabledModelError(HuggingFaceError):
    status_code = 422


class HuggingFaceUnsupportedModelError(HuggingFaceError):
    """The repo exists but holds nothing a worker can serve (no weights, unknown size)."""

    status_code = 422


class HuggingFaceUnavailableError(TransientError):
    status_code = 503


# --- Runpod / GPU provider ------------------------------------------------------------


class ProviderError(VisgateError):
    status_code = 502


class RunpodAPIError(ProviderError):
    status_code = 502


class RunpodAuthError(ProviderError):
    """Runpod rejected the deployment's (or the operator's) Runpod key, or there is none.
    502, not 401: the caller's Visgate key was fine; an upstream credential was not."""

    status_code = 502


class RunpodInsufficientGPUError(ProviderError):
    status_code = 422


class WorkerLogsUnavailableError(ProviderError):
    """The configured provider API cannot read workers' own logs (Runpod GraphQL). 409: a
    condition of this install that a retry cannot change, not a fault of the service."""

    status_code = 409


class ProviderNotConfiguredError(ProviderError):
    """This process runs with no GPU provider, so it cannot reach any endpoint. 503: the
    request was fine; a control plane with a provider can serve it."""

    status_code = 503


class RunpodTemplateNotConfiguredError(ProviderError):
    status_code = 500


class RunpodUnavailableError(TransientError):
    status_code = 503


# --- secrets --------------------------------------------------------------------------


class SecretStoreError(VisgateError):
    status_code = 500


class SecretNotFoundError(SecretStoreError):
    status_code = 404


class SecretPermissionError(SecretStoreError):
    status_code = 500


class SecretStoreUnavailableError(TransientError):
    status_code = 503


class StoreUnavailableError(TransientError):
    status_code = 503


class StoreAccessError(VisgateError):
    """The record store refused the call for a reason a retry will not fix (permission,
    credentials, missing database or index, a request it calls invalid): the service cannot
    work until the operator fixes the setup, hence 503 and not transient."""

    status_code = 503


ERROR_TYPES: dict[str, type[VisgateError]] = {
    cls.__name__: cls
    for cls in [
        VisgateError,
        TransientError,
        ValidationError,
        UnauthorizedError,
        DeploymentNotFoundError,
        RateLimitedError,
        IdempotencyConflictError,
        HuggingFaceModelNotFoundError,
        HuggingFaceGatedModelError,
        HuggingFaceInvalidTokenError,
        HuggingFaceDisabledModelError,
        HuggingFaceUnsupportedModelError,
        HuggingFaceUnavailableError,
        RunpodAPIError,
        RunpodAuthError,
        RunpodInsufficientGPUError,
        RunpodTemplateNotConfiguredError,
        RunpodUnavailableError,
        StoreUnavailableError,
        StoreAccessError,
    ]
}
