"""The one rule for owner ids and secret names, shared by every backend.

Both parts end up in a Secret Manager secret id and label value (lowercase letters, digits,
`_` and `-`, at most 63 characters) and in a `local:` reference split on `/`, so a backend
that accepted more would hand out refs another backend cannot store.
"""

from __future__ import annotations

import re

_PART = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def check_ids(owner: str, name: str) -> None:
    """Refuse ids no backend can store; a bad id is a caller bug, hence `ValueError`."""
    for label, value in (("deployment id", owner), ("secret name", name)):
        if not _PART.fullmatch(value):
            raise ValueError(
                f"{label} {value!r} must be 1-63 chars of lowercase letters, digits, '_' or '-'"
            )
