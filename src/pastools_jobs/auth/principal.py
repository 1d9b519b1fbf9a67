"""Roles and the principal a request acts as; every authorization decision is made here.

A principal sees one project (viewer, operator) or all of them (admin). What it cannot
see answers exactly like what does not exist, so ids of other projects do not leak.
"""

from dataclasses import dataclass, replace
from enum import StrEnum

from pastools_jobs.audit.trail import NO_AUTH, Actor, ActorKind, Channel
from pastools_jobs.db.models import Job
from pastools_jobs.domain import Forbidden, JobNotFound, ProjectNotFound


class Role(StrEnum):
    """viewer reads; operator also submits, cancels, retries, uploads, sets schemas and
    manages webhooks; admin sees every project, creates projects, cleans up and manages
    tokens."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def includes(self, other: "Role") -> bool:
        return _RANK[self] >= _RANK[other]


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    role: Role
    project_id: str | None
    """The one project a viewer or operator sees; None for an admin, who sees all."""
    token_id: str | None = None
    token_name: str | None = None
    channel: Channel = Channel.API
    """Through what the request came: the REST API (a bearer token) or the dashboard (its
    sign-in cookie)."""

    @property
    def actor(self) -> Actor:
        """Who the audit trail says acted."""
        if self.token_id is None:
            return replace(NO_AUTH, channel=self.channel)
        return Actor(ActorKind.TOKEN, self.channel, id=self.token_id, name=self.token_name)

    def sees(self, project_id: str) -> bool:
        return self.project_id is None or self.project_id == project_id

    def project_scope(self, requested: str | None) -> str | None:
        """The project a listing or count is restricted to; 404 for one it cannot see."""
        if self.project_id is None:
            return requested
        if requested is not None and requested != self.project_id:
            raise ProjectNotFound(requested)
        return self.project_id

    def require_project(self, project_id: str, role: Role = Role.VIEWER) -> None:
        """404 for a project it cannot see, then 403 if its role is not enough."""
        if not self.sees(project_id):
            raise ProjectNotFound(project_id)
        self.require(role)

    def require_job(self, job: Job, role: Role = Role.VIEWER) -> None:
        """404 (the same as for a missing id) for another project's job, then the role."""
        if not self.sees(job.project_id):
            raise JobNotFound(job.id)
        self.require(role)

    def require(self, role: Role) -> None:
        if not self.role.includes(role):
            raise Forbidden(f"This needs the {role} role; the token has {self.role}.")


UNAUTHENTICATED_ADMIN = Principal(Role.ADMIN, None)
"""Everyone, when auth is turned off with --no-auth."""

NO_AUTH_WARNING = "authentication is OFF (--no-auth): anyone who can reach the API acts as admin"
