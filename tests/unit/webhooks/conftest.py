"""Fixtures of the in-process webhook tests (signing, events, URL checks)."""

from tests.support.webhooks import client, fake_dns, secret

__all__ = ["client", "fake_dns", "secret"]
