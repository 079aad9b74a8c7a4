"""Operator settings given as Secret Manager references, resolved once at start-up.

`INTERNAL_WEBHOOK_SECRET`, `RUNPOD_API_KEY` and `VISGATE_SECRET_KEY` may hold
`sm://projects/P/secrets/NAME[/versions/V]` (version defaults to `latest`) or the full
`projects/P/secrets/NAME/versions/V`, so no secret has to sit in an env file. Blocking on
purpose: it runs before the event loop serves anything. (On Cloud Run, `--set-secrets`
does the same job without this; both work.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc

from visgate.secrets.gcp_errors import map_error, sync_retrying

if TYPE_CHECKING:
    from google.cloud.secretmanager_v1 import SecretManagerServiceClient

_SM_URL = re.compile(r"sm://(projects/[^/\s]+/secrets/[^/\s]+)(/versions/[^/\s]+)?")
_RESOURCE = re.compile(r"projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+")


def reference_name(value: str) -> str | None:
    """The secret version a setting refers to, or None when the value is a plain secret."""
    if match := _SM_URL.fullmatch(value):
        return match.group(1) + (match.group(2) or "/versions/latest")
    if _RESOURCE.fullmatch(value):
        return value
    return None


def resolve_secret_reference(
    value: str,
    *,
    client: SecretManagerServiceClient | None = None,
    attempts: int = 4,
    backoff_s: float = 0.5,
    timeout_s: float = 10.0,
) -> str:
    """The secret a reference points to (trailing newline dropped), or `value` unchanged."""
    name = reference_name(value)
    if name is None:
        return value
    owned = client is None
    if client is None:
        client = _new_client()
    try:
        for attempt in sync_retrying("access_secret_version", attempts, backoff_s):
            with attempt:
                response = client.access_secret_version(
                    request={"name": name}, retry=None, timeout=timeout_s
                )
    except gexc.GoogleAPICallError as exc:
        raise map_error(exc, action="access_secret_version", resource=name) from exc
    finally:
        if owned:
            client.transport.close()
    # `echo value | gcloud secrets create --data-file=-` stores a newline nobody meant.
    return bytes(response.payload.data).decode("utf-8").rstrip("\r\n")


def resolve_secret_references(
    values: Mapping[str, str | None],
    *,
    client: SecretManagerServiceClient | None = None,
) -> dict[str, str | None]:
    """Resolve each reference among `values` (env name -> value) with one shared client."""
    if not any(v is not None and reference_name(v) for v in values.values()):
        return dict(values)
    owned = client is None
    if client is None:
        client = _new_client()
    try:
        return {
            key: None if v is None else resolve_secret_reference(v, client=client)
            for key, v in values.items()
        }
    finally:
        if owned:
            client.transport.close()


def _new_client() -> SecretManagerServiceClient:
    # Imported here: the Secret Manager client library (several hundred modules) loads only
    # when a setting really is a reference, not on every start-up.
    from google.cloud.secretmanager_v1 import SecretManagerServiceClient

    return SecretManagerServiceClient()
