"""Deployments: the requests that create one and the worker reports about it (`schemas`), the
rules a request or a report applies (`service`, `callback`). Routers and the reconciler's
steps call in here; this package imports neither of them."""
