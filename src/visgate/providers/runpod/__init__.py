"""The Runpod backends of `GpuProvider`: templates and endpoints through GraphQL (gql) or
REST API v2 (httpx), health and jobs through the serverless endpoint API (httpx) for both.
Imports domain/ and providers.base only.
"""

from visgate.providers.runpod.provider import RunpodProvider
from visgate.providers.runpod.rest_provider import RunpodRestProvider

__all__ = ["RunpodProvider", "RunpodRestProvider"]
