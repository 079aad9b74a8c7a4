"""User webhooks: Standard Webhooks signing and `verify_webhook` for receivers, URL safety
(SSRF), one delivery attempt, the retry schedule, event payloads. Imports domain/ only; the
reconciler persists deliveries and schedules the attempts.
"""

from visgate.webhooks.signing import WebhookVerificationError, generate_secret, verify_webhook

__all__ = ["WebhookVerificationError", "generate_secret", "verify_webhook"]
