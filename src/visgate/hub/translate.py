"""huggingface_hub exceptions → the service's error types, with messages a user can act on.

The client library decides its exception class from the `X-Error-Code` header first
(`GatedRepo`, `RepoNotFound`, `RevisionNotFound`), then `X-Error-Message` ("Access to
this resource is disabled."), then the status (huggingface_hub `utils/_http.py`,
`hf_raise_for_status`). `GatedRepoError` subclasses `RepositoryNotFoundError`, so it is
tested first. A refused token is a bare 401 whose message is "Invalid credentials in
Authorization header". Messages never include the token.
"""

from __future__ import annotations

import asyncio

import httpx2
from huggingface_hub.errors import (
    DisabledRepoError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from visgate.domain.errors import (
    HuggingFaceDisabledModelError,
    HuggingFaceError,
    HuggingFaceGatedModelError,
    HuggingFaceInvalidTokenError,
    HuggingFaceModelNotFoundError,
    HuggingFaceUnavailableError,
    ValidationError,
    VisgateError,
)
from visgate.kit import parse_retry_after, retry_after_header

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def gated_error(model_id: str, *, with_token: bool) -> HuggingFaceGatedModelError:
    if with_token:
        return HuggingFaceGatedModelError(
            f"{model_id} is gated and the hf_token given has no access to it: accept its "
            f"conditions at https://huggingface.co/{model_id} with the token's account, "
            "then deploy again with that hf_token"
        )
    return HuggingFaceGatedModelError(
        f"{model_id} is gated: pass `hf_token` with a Hugging Face token whose account "
        f"accepted its conditions at https://huggingface.co/{model_id}"
    )


def not_found_error(model_id: str, *, with_token: bool) -> HuggingFaceModelNotFoundError:
    hint = (
        "or it is private and the hf_token given has no access"
        if with_token
        else "or it is private: pass `hf_token` with access to it"
    )
    return HuggingFaceModelNotFoundError(
        f"model {model_id} was not found on the Hugging Face hub ({hint})"
    )


def _retry_after(response: httpx2.Response) -> dict[str, str]:
    """The hub's `Retry-After` (seconds or an HTTP date) as whole seconds, or nothing."""
    return retry_after_header(parse_retry_after(response.headers.get("Retry-After")))


def translate(exc: BaseException, model_id: str, *, with_token: bool) -> VisgateError:
    """The service error for a failed hub call about `model_id`."""
    if isinstance(exc, GatedRepoError):
        return gated_error(model_id, with_token=with_token)
    if isinstance(exc, RepositoryNotFoundError | RevisionNotFoundError):
        return not_found_error(model_id, with_token=with_token)
    if isinstance(exc, DisabledRepoError):
        return HuggingFaceDisabledModelError(
            f"{model_id} has been disabled on the Hugging Face hub and cannot be downloaded"
        )
    if isinstance(exc, HfHubHTTPError):
        return _from_status(exc.response, model_id, with_token=with_token)
    if isinstance(exc, HFValidationError):
        return ValidationError(f"{model_id!r} is not a valid Hugging Face repo id")
    if isinstance(exc, httpx2.TimeoutException | asyncio.TimeoutError | TimeoutError):
        return HuggingFaceUnavailableError(
            f"the Hugging Face hub did not answer in time about {model_id}; will retry"
        )
    if isinstance(exc, httpx2.TransportError):
        return HuggingFaceUnavailableError(
            f"could not reach the Hugging Face hub about {model_id} ({type(exc).__name__}); "
            "will retry"
        )
    if isinstance(exc, OfflineModeIsEnabled):
        return HuggingFaceUnavailableError(
            "huggingface_hub is in offline mode (HF_HUB_OFFLINE was set when it was imported) "
            "but this control plane was not configured offline"
        )
    return HuggingFaceError(f"unexpected answer from the Hugging Face hub about {model_id}")


def _from_status(response: httpx2.Response, model_id: str, *, with_token: bool) -> VisgateError:
    status = response.status_code
    if status == 401:
        if with_token:
            return HuggingFaceInvalidTokenError(
                "the hf_token was refused by the Hugging Face hub (invalid or expired): "
                "create a read token at https://huggingface.co/settings/tokens"
            )
        return not_found_error(model_id, with_token=False)
    if status == 403:
        # A fine-grained token without read access to this repo.
        return not_found_error(model_id, with_token=with_token)
    if status == 404:
        return not_found_error(model_id, with_token=with_token)
    if status in TRANSIENT_STATUSES or status >= 500:
        return HuggingFaceUnavailableError(
            f"the Hugging Face hub answered {status} about {model_id}; will retry",
            headers=_retry_after(response),
        )
    return HuggingFaceError(f"the Hugging Face hub answered {status} about {model_id}")
