"""What Runpod's GraphQL error messages mean. Runpod answers most refusals as HTTP 200 with
`errors: [{message}]` and no stable error codes, so a few phrases are all there is.

Known texts: the worker cap reads "Your worker concurrency cannot go beyond the maximum
limit of (N). Please contact support..." (runpod/runpodctl issue #117); a duplicate
template name and a template still used by an endpoint are refused with a message
(docs.runpod.io/sdks/graphql/manage-pod-templates). The patterns stay loose on purpose.
"""

from __future__ import annotations

import re

_QUOTA = re.compile(
    r"worker concurrency|maximum limit|max(imum)? (number of )?workers|workers? (quota|limit)|quota",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(
    r"not found|does not exist|doesn't exist|no such|could not find|unable to find",
    re.IGNORECASE,
)
_IN_USE = re.compile(r"in use|being used|used by|attached to|still (has|have)", re.IGNORECASE)
_DUPLICATE = re.compile(r"unique|already exists|duplicate|already taken", re.IGNORECASE)


def is_quota(message: str) -> bool:
    return bool(_QUOTA.search(message))


def is_not_found(message: str) -> bool:
    return bool(_NOT_FOUND.search(message))


def is_in_use(message: str) -> bool:
    return bool(_IN_USE.search(message))


def is_duplicate_name(message: str) -> bool:
    return bool(_DUPLICATE.search(message))


def scrub(text: str, secret: str) -> str:
    """Remove a secret from text that came from elsewhere (an echoed request, a URL)."""
    return text.replace(secret, "[redacted]") if secret else text
