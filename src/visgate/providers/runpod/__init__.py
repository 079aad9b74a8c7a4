"""The Runpod backend of `GpuProvider`: GraphQL (gql) for templates and endpoints, the
serverless HTTP API (httpx) for health and jobs. Imports domain/ and providers.base only.
"""

from visgate.providers.runpod.provider import RunpodProvider

__all__ = ["RunpodProvider"]
