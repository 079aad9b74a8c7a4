"""The reconciler: leased step loop, one idempotent step per status, teardown, webhook
deliveries, orphan sweeper. Imports protocols (providers.base, secrets.base), the store
façade and pure packages (hub, registry, webhooks); never a backend.
"""
