"""Every request has an id: the caller's `X-Request-ID` when it is a sane one, else a new
one. The answer carries it back, and every line logged while serving it names it, so a
client's report and the server's log can be matched."""

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pastools_jobs.logs import REQUEST_ID

REQUEST_ID_HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,200}")


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = given if given and _SANE.fullmatch(given) else uuid.uuid4().hex

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, request_id)
            await send(message)

        # Not reset on the way out: each request is served in a task of its own, and an
        # unexpected error is logged and answered (`problems.problem`, with the id) by
        # Starlette's outermost middleware, after this one has returned.
        REQUEST_ID.set(request_id)
        await self.app(scope, receive, answer)
