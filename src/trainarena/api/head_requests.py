"""HEAD answered as GET without the body, wherever GET is: FastAPI's routes take only the methods they
declare, so HEAD was 405 on every dashboard page and on GET /v1/health, and uptime monitors, ``curl
-I``, ``wget --spider`` and link checkers, which ask with HEAD, read the service as broken. The
answer is GET's (status, headers, Content-Length) with the body left out. A job's event stream
(``/v1/jobs/{id}/events``) is left out: it would be followed to its end to answer one status line."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STREAM_SUFFIX = "/events"


class HeadAsGet:
    """ASGI middleware: a HEAD request is served as GET, and only the response's start is sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or scope["path"].endswith(STREAM_SUFFIX):
            await self.app(scope, receive, send)
            return

        async def send_head(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, send_head)
