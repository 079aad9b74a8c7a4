"""Google API errors from Secret Manager, turned into the service's own error types.

Shared by the async store and the sync start-up resolver. The client library's built-in
retries are switched off at each call site, so tenacity here is the one retry policy, and a
permission error names the IAM permission and role an operator has to grant.
"""

from __future__ import annotations

from typing import Any

import structlog
from google.api_core import exceptions as gexc
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from visgate.domain.errors import (
    SecretNotFoundError,
    SecretPermissionError,
    SecretStoreError,
    SecretStoreUnavailableError,
    VisgateError,
)

log = structlog.get_logger(__name__)

# Answers worth another try: the service or its quota is briefly unavailable.
RETRYABLE: tuple[type[Exception], ...] = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.ResourceExhausted,
)

# action -> (IAM permission, the narrowest predefined role holding it)
_NEEDS: dict[str, tuple[str, str]] = {
    "access_secret_version": (
        "secretmanager.versions.access",
        "roles/secretmanager.secretAccessor",
    ),
    "add_secret_version": ("secretmanager.versions.add", "roles/secretmanager.secretVersionAdder"),
    "create_secret": ("secretmanager.secrets.create", "roles/secretmanager.admin"),
    "list_secrets": ("secretmanager.secrets.list", "roles/secretmanager.admin"),
    "delete_secret": ("secretmanager.secrets.delete", "roles/secretmanager.admin"),
    "get_secret": ("secretmanager.secrets.get", "roles/secretmanager.viewer"),
}


def map_error(exc: Exception, *, action: str, resource: str) -> VisgateError:
    """One of our errors for a Google API error; `resource` is a name, never a value."""
    if isinstance(exc, gexc.NotFound):
        return SecretNotFoundError(f"secret {resource} does not exist (deleted or never stored)")
    if isinstance(exc, gexc.PermissionDenied):
        permission, role = _NEEDS.get(action, ("secretmanager.*", "roles/secretmanager.admin"))
        return SecretPermissionError(
            f"Secret Manager denied {action} on {resource}: the service account needs "
            f"{permission} (role {role}, or the visgateSecretStore role deploy.sh creates)"
        )
    if isinstance(exc, gexc.Unauthenticated):
        return SecretPermissionError(
            f"Secret Manager rejected the credentials for {action} on {resource}: check the "
            "service account / application default credentials"
        )
    if isinstance(exc, RETRYABLE):
        return SecretStoreUnavailableError(
            f"Secret Manager unavailable for {action} on {resource} after retries "
            f"({type(exc).__name__})"
        )
    detail = getattr(exc, "message", "") or ""
    return SecretStoreError(
        f"Secret Manager {action} on {resource} failed: {type(exc).__name__} {detail}".strip()
    )


def retry_policy(action: str, attempts: int, backoff_s: float) -> dict[str, Any]:
    """Keyword arguments for tenacity's (Async)Retrying: exponential backoff with jitter."""

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "secret_manager_retry",
            action=action,
            attempt=state.attempt_number,
            error=type(exc).__name__,
        )

    return {
        "stop": stop_after_attempt(max(1, attempts)),
        "wait": wait_exponential(multiplier=backoff_s, max=backoff_s * 16)
        + wait_random(0, backoff_s),
        "retry": retry_if_exception_type(RETRYABLE),
        "before_sleep": log_retry,
        "reraise": True,
    }


def async_retrying(action: str, attempts: int, backoff_s: float) -> AsyncRetrying:
    return AsyncRetrying(**retry_policy(action, attempts, backoff_s))


def sync_retrying(action: str, attempts: int, backoff_s: float) -> Retrying:
    return Retrying(**retry_policy(action, attempts, backoff_s))
