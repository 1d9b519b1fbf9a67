"""`pastools tokens create|list|revoke`, and the admin token of `pastools up`'s sign-in link.

They work on the jobs database directly: whoever runs them can reach it, and so
holds more than any token could grant.
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session

from pastools_jobs.audit.trail import AuditAction, command_line_user, record
from pastools_jobs.auth.principal import Role
from pastools_jobs.auth.tokens import (
    IssuedToken,
    issue_token,
    list_tokens,
    revoke_named,
    revoke_token,
)
from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import ApiToken

T = TypeVar("T")
P = TypeVar("P", bound=argparse.ArgumentParser)

SIGN_IN_TOKEN_NAME = "pastools up"
"""Each start of `pastools up` revokes the admin token the previous one printed."""


def add_tokens_parser(commands: "argparse._SubParsersAction[P]") -> None:
    tokens = commands.add_parser("tokens", help="create, list and revoke API tokens")
    actions = tokens.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="print a new token (shown only this once)")
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--project", help="the project a viewer or operator token belongs to")
    create.add_argument("--name", help="a label, to recognise the token in `tokens list`")
    actions.add_parser("list", help="the tokens, without their secrets")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("id", help="the token's id, as `tokens list` shows it")
    for sub in actions.choices.values():
        sub.add_argument("--database-url", help="jobs database URL (DATABASE_URL)")
        sub.add_argument("--data-dir", type=Path, help="state directory (PASTOOLS_DATA_DIR)")


def run_tokens(settings: Settings, args: argparse.Namespace) -> None:
    if args.action == "create":
        create(settings, Role(args.role), args.project, args.name)
    elif args.action == "list":
        show(settings)
    else:
        revoke(settings, args.id)


def create(settings: Settings, role: Role, project_id: str | None, name: str | None) -> None:
    """Only the token goes to stdout, so that a script can capture it."""
    issued = _in_database(settings, lambda s: _issued(s, role, project_id, name))
    scope = issued.record.project_id or "every project"
    print(f"created token {issued.record.id} ({role}, {scope})", file=sys.stderr)
    print(issued.token)


def show(settings: Settings) -> None:
    lines = _in_database(settings, lambda s: [_line(token) for token in list_tokens(s)])
    print("id\trole\tproject\tstate\tcreated\tlast used\tname")
    for line in lines:
        print(line)


def _line(token: ApiToken) -> str:
    used = token.last_used_at.isoformat(timespec="seconds") if token.last_used_at else "-"
    state = "revoked" if token.revoked_at else "active"
    created = token.created_at.isoformat(timespec="seconds")
    fields = [token.id, token.role, token.project_id or "*", state, created, used, token.name]
    return "\t".join(field or "" for field in fields)


def revoke(settings: Settings, token_id: str) -> None:
    _in_database(settings, lambda s: _revoked(s, token_id))
    print(f"revoked token {token_id}", file=sys.stderr)


def _issued(session: Session, role: Role, project_id: str | None, name: str | None) -> IssuedToken:
    issued = issue_token(session, role, project_id, name)
    _audit(session, AuditAction.TOKEN_CREATE, issued.record)
    return issued


def _revoked(session: Session, token_id: str) -> ApiToken:
    revoked = revoke_token(session, token_id)
    _audit(session, AuditAction.TOKEN_REVOKE, revoked)
    return revoked


def _audit(session: Session, action: AuditAction, token: ApiToken) -> None:
    details = {"token_id": token.id, "name": token.name, "role": token.role}
    record(session, command_line_user(), action, project_id=token.project_id, details=details)


def sign_in_token(settings: Settings) -> str:
    """A fresh admin token for the link `pastools up` prints; the last run's is revoked."""

    def rotate(session: Session) -> str:
        if revoked := revoke_named(session, SIGN_IN_TOKEN_NAME):
            details = {"name": SIGN_IN_TOKEN_NAME, "tokens": revoked}
            record(session, command_line_user(), AuditAction.TOKEN_REVOKE, details=details)
        return _issued(session, Role.ADMIN, None, SIGN_IN_TOKEN_NAME).token

    return _in_database(settings, rotate)


def _in_database(settings: Settings, work: Callable[[Session], T]) -> T:
    db = Database(settings.resolved_database_url, application_name="pastools-cli")
    try:
        with db.transaction() as session:
            return work(session)
    finally:
        db.dispose()
