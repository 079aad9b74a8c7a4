"""The HTTP face: FastAPI app factory, routers, auth, error envelope, rate limit, metrics.
Imports the domain, the store/secrets/provider protocols and `services`; never a backend directly.
"""
