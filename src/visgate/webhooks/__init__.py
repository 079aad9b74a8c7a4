"""User webhooks: Standard Webhooks signing and verification, URL safety (SSRF), one
delivery attempt. Imports domain/ only; the reconciler schedules the attempts.
"""
