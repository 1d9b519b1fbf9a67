"""The digest that names a version of a project's schema or test suite in a job's result.

Canonical JSON (sorted keys, no spaces, UTF-8), so a user can compute the same digest
from what `GET /api/projects/{id}` shows and tell which version a job ran.
"""

import hashlib
import json
from typing import Any


def sha256_of(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
