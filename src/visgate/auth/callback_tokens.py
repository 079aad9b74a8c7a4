"""Callback tokens: the bearer token a deployment's worker sends back when it reports.

Each token is the HMAC of the deployment id under one operator key, so the control plane
checks it without storing it, and a worker's token is good for its own deployment only.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from visgate.secrets.local import load_or_create_key_file
from visgate.settings import Settings


@dataclass(frozen=True)
class CallbackTokens:
    key: bytes

    def token(self, deployment_id: str) -> str:
        """The token the worker of `deployment_id` is given and sends back."""
        return hmac.new(self.key, deployment_id.encode(), sha256).hexdigest()

    def check(self, deployment_id: str, token: str) -> bool:
        """Constant-time check on bytes: `compare_digest` refuses non-ASCII str (a 500 for
        a header such as `Bearer \\xff`); as bytes such a token simply does not match."""
        expected = self.token(deployment_id).encode("ascii")
        return hmac.compare_digest(expected, token.encode("utf-8", "surrogateescape"))


def load_callback_key(settings: Settings) -> bytes:
    """INTERNAL_WEBHOOK_SECRET, else a random key made once in the data folder and shared by
    every process using that folder."""
    if settings.internal_webhook_secret is not None:
        return settings.internal_webhook_secret.get_secret_value().encode()
    # The same race-safe creation as the local secret store's key: a second process starting
    # at the same moment reads the whole key, never an empty or half-written file.
    path = Path(settings.data_dir) / "internal_webhook.key"
    return load_or_create_key_file(path, lambda: secrets.token_hex(32).encode()).encode()
