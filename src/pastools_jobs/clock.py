"""The one clock: every timestamp the platform writes is timezone-aware UTC.

A module of its own so the API, the mirror, the datasets and the activities can
share it without importing each other.
"""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware and in UTC, so rows compare correctly on both dialects."""
    return datetime.now(UTC)
