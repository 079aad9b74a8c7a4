"""Where records live: the `DocumentBackend` protocol (base.py) with its sqlite and firestore
backends, one repository per record type over it (deployments, api_keys, idempotency,
rate_limits, deliveries, quotas) and `Store` (repositories.py), which holds them all.
Imports domain/.
"""
