"""The `local` GpuProvider: "creating an endpoint" starts the worker image's code as a local
process behind an adapter that serves Runpod's v2 endpoint routes. No cloud, no downloads.
"""

from visgate.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
