"""Where uploads, import sources and artifacts live: local disk or an S3 object store."""

import logging

from pastools_jobs.config import Settings
from pastools_jobs.domain import StorageUnavailable
from pastools_jobs.storage.base import Storage
from pastools_jobs.storage.local import LocalStorage

MIN_PART_BYTES = 5 << 20
"""Below this, AWS S3 and MinIO refuse any part of a multipart upload but the last."""

log = logging.getLogger(__name__)


def open_storage(settings: Settings) -> Storage:
    """The configured backend; boto3 is imported only when an object store is."""
    if settings.storage_url is None:
        return LocalStorage(settings.resolved_import_dir, settings.artifacts_dir)
    from pastools_jobs.storage.s3 import S3Storage

    return S3Storage.from_url(settings.storage_url, settings.storage_part_bytes)


def checked_storage(settings: Settings) -> Storage:
    """The backend, checked before a process serves: refused credentials or a missing
    bucket stop it with one line (StorageMisconfigured); a store that cannot be reached
    yet is an outage the process rides out, as it does Temporal's."""
    storage = open_storage(settings)
    try:
        storage.check()
    except StorageUnavailable as error:
        log.warning("%s Uploads, imports and artifacts wait for it.", error)
    if settings.storage_url is not None and settings.storage_part_bytes < MIN_PART_BYTES:
        log.warning(
            "PASTOOLS_STORAGE_PART_BYTES is %d: AWS S3 and MinIO refuse parts under %d bytes "
            "but for the last, so large files would fail on them",
            settings.storage_part_bytes,
            MIN_PART_BYTES,
        )
    return storage
