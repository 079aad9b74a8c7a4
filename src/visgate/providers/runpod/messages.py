"""What Runpod's GraphQL error messages mean. Runpod answers most refusals as HTTP 200 with
`errors: [{message}]` and no stable error codes, so a few phrases are all there is.

Known texts: the worker cap reads "Your worker concurrency cannot go beyond the maximum
limit of (N). Please contact support..." (runpod/runpodctl issue #117); a duplicate
template name and a template still used by an endpoint are refused with a message
(docs.runpod.io/sdks/graphql/manage-pod-templates). The not-found, in-use and duplicate
patterns stay loose on purpose (they only make deletes and creates repeat-safe); the
quota pattern is anchored on worker wording, since it turns a refusal into a GPU verdict.
"""

from __future__ import annotations

import re

# Worker-cap wording only: a bare "maximum limit" or "quota" also appears in validation
# messages about other fields, which must stay `RunpodAPIError`.
_QUOTA = re.compile(
    r"worker concurrency\b.*\b(limit|beyond|exceed)"
    r"|\b(max(imum)?\s+)?(number\s+of\s+)?workers?\s+(quota|limit|cap)\b"
    r"|\b(quota|limit|cap)\s+(of|on|for)\s+(\w+\s+){0,2}workers?\b"
    r"|\bexceed\w*\s+(the\s+|your\s+)?(max(imum)?\s+)?(number\s+of\s+)?workers?\b",
    re.IGNORECASE,
)
# Runpod's answer to its own internal hiccups ("Something went wrong. Please try again
# later."): worth a few more tries, never a verdict on the request.
_RETRYABLE = re.compile(r"try again|something went wrong|internal server error", re.IGNORECASE)
_NOT_FOUND = re.compile(
    r"not found|does not exist|doesn't exist|no such|could not find|unable to find",
    re.IGNORECASE,
)
_IN_USE = re.compile(
    r"in use|being used|used by|attached to|bound to|still (has|have)", re.IGNORECASE
)
_DUPLICATE = re.compile(r"unique|already exists|duplicate|already taken", re.IGNORECASE)


def is_quota(message: str) -> bool:
    return bool(_QUOTA.search(message))


def is_retryable(message: str) -> bool:
    return bool(_RETRYABLE.search(message))


def is_not_found(message: str) -> bool:
    return bool(_NOT_FOUND.search(message))


def is_in_use(message: str) -> bool:
    return bool(_IN_USE.search(message))


def is_duplicate_name(message: str) -> bool:
    return bool(_DUPLICATE.search(message))


def scrub(text: str, secret: str) -> str:
    """Remove a secret from text that came from elsewhere (an echoed request, a URL)."""
    return text.replace(secret, "[redacted]") if secret else text
