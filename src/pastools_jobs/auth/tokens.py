"""API tokens: issued, listed, revoked, and checked on each request.

A token reads `pst_<id>_<secret>`. The id finds the row; only the SHA-256 of the
32-byte random secret is stored (a slow hash adds nothing to a secret that long) and
compared in constant time. The token is shown once, when it is issued.
"""

import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pastools_jobs.auth.principal import Principal, Role
from pastools_jobs.clock import utcnow
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import ApiToken
from pastools_jobs.domain import InvalidJobInput, JobError

PREFIX = "pst"
LAST_USED_PRECISION = timedelta(minutes=1)
"""last_used_at is written at most this often per token: no write per request."""


class TokenNotFound(JobError):
    title = "Token not found"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"There is no token with id '{token_id}'.")


@dataclass(frozen=True)
class IssuedToken:
    record: ApiToken
    token: str


def issue_token(
    session: Session, role: Role, project_id: str | None, name: str | None
) -> IssuedToken:
    """Viewer and operator tokens belong to one project; admin tokens to none (all)."""
    if role is Role.ADMIN and project_id is not None:
        raise InvalidJobInput("admin tokens see every project; give no project")
    if role is not Role.ADMIN and project_id is None:
        raise InvalidJobInput(f"a {role} token needs a project")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    record = ApiToken(
        id=token_id,
        name=name,
        role=role,
        project_id=project_id,
        secret_sha256=_digest(secret),
        created_at=utcnow(),
    )
    session.add(record)
    session.flush()
    return IssuedToken(record, f"{PREFIX}_{token_id}_{secret}")


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)))


def revoke_token(session: Session, token_id: str) -> ApiToken:
    record = session.get(ApiToken, token_id, with_for_update=True)
    if record is None:
        raise TokenNotFound(token_id)
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


def revoke_named(session: Session, name: str) -> int:
    """Revoke the live tokens with this name, e.g. those earlier `pastools up` runs printed."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0))


def authenticate(db: Database, token: str) -> Principal | None:
    """The principal a token acts as, or None if it is unknown, garbled or revoked."""
    parsed = _parse(token)
    if parsed is None:
        return None
    token_id, secret = parsed
    with db.reading() as connection:
        row = connection.execute(
            select(ApiToken.__table__).where(ApiToken.id == token_id)
        ).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    _touch(db, token_id, row.last_used_at)
    return Principal(Role(row.role), row.project_id, token_id, row.name)


def active_tokens(db: Database, token_ids: Collection[str]) -> set[str]:
    """Those of `token_ids` still valid: how open streams learn of a revoke."""
    query = select(ApiToken.id).where(ApiToken.id.in_(token_ids), ApiToken.revoked_at.is_(None))
    with db.reading() as connection:
        return set(connection.scalars(query))


def _touch(db: Database, token_id: str, last_used_at: datetime | None) -> None:
    now = utcnow()
    if last_used_at is not None and now - last_used_at < LAST_USED_PRECISION:
        return
    with db.transaction() as session:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def _parse(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
