"""HEAD wherever GET is served: load balancers health-check with HEAD.

The request is routed as a GET and its answer sent with the same status and headers, without a
body. Routes may read `scope["marquee.head"]` to skip producing a body nobody will read.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.searching import HEAD_REQUEST


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        inner = {**scope, "method": "GET", HEAD_REQUEST: True}
        finished = False

        async def without_body(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body":
                if finished:
                    return
                finished = not message.get("more_body", False)
                message = {"type": "http.response.body", "body": b"", "more_body": not finished}
            await send(message)

        try:
            await self.app(inner, receive, without_body)
        finally:
            # The metrics middleware outside labels the request by the route matched inside.
            if "route" in inner:
                scope["route"] = inner["route"]
