"""A cap on every request body, answered with a 413 problem.

Starlette's own `max_body_size` answers a too-large Content-Length with a plain-text
413 before any handler runs; this middleware refuses it as problem details instead,
and counts the bytes of bodies sent without a length (chunked) as they arrive.
"""

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pastools_jobs.api.problems import problem
from pastools_jobs.domain import PayloadTooLarge

LimitFor = Callable[[str], int]
"""The largest body accepted on a path."""


class RequestBodyLimit:
    def __init__(self, app: ASGIApp, limit_for: LimitFor) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            error = PayloadTooLarge(limit)
            await problem(413, error.title, str(error))(scope, receive, send)
            return
        await self.app(scope, _counting(receive, limit), send)


def _counting(receive: Receive, limit: int) -> Receive:
    """Raises inside the route, where the problem handlers turn it into a 413.

    An HTTPException, because FastAPI turns any other error raised while it reads a
    body into a 400 "error parsing the body".
    """
    received = 0

    async def receive_with_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, str(PayloadTooLarge(limit)))
        return message

    return receive_with_limit
