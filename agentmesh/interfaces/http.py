"""The HTTP API (``agentmesh serve``): goals, their live events, approvals, runs and audits; the
OpenAI-compatible endpoints (``openai_compat``); and the web page at ``/``.

    from agentmesh.interfaces.http import create_app
    app = create_app(get_settings(), token="s3cret")   # any ASGI server: uvicorn.run(app)

Endpoints (all under ``/v1`` need ``Authorization: Bearer <token>`` when a token is configured):

- ``POST /v1/goals`` ``{"goal", "graph"?, "model"?, "approvals"?, "context"?}`` → 202 ``{"id", "status", "links"}``
- ``GET /v1/goals/{id}`` the run JSON (agentmesh.runs); ``GET /v1/goals/{id}/events`` Server-Sent Events,
  each a ``data:`` line of JSON with ``id:`` its sequence number, resumable with ``Last-Event-ID``; ``token``
  events (pieces of a model reply as it streams) are live only: they have no ``id:`` and are not replayed
- ``POST /v1/goals/{id}/approvals`` ``{"call_id"?, "approved", "reason"?, "args"?, "force"?}`` (``args``: approve
  with these arguments changed; ``force``: resume a run a live process owns); ``POST /v1/goals/{id}/cancel``
- ``GET /v1/runs``, ``GET /v1/runs/{id}``, ``GET /v1/runs/{id}/audit``; ``GET /v1/me`` the signed-in identity
- ``GET /v1/models``, ``POST /v1/chat/completions`` (OpenAI-compatible), ``GET /healthz``, ``/docs``

Each token is a named identity with roles (``agentmesh.interfaces.identities``): submitting and cancelling goals
needs ``submit``, approving ``approve``; the run records who started it and the audit who decided each call.

Errors are JSON in the OpenAI shape, ``{"error": {"message", "type", "code"}}``, with a 4xx status for
anything a client sent wrong (403 for a role the identity lacks, or an approval ``four_eyes`` refuses; 409 for a run
another live process owns, ``run_owned``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException

from agentmesh.core.exceptions import AgentmeshError, NotFoundError, PolicyViolation, RunOwned, UserError
from agentmesh.core.settings import Settings
from agentmesh.interfaces._goals import GoalService
from agentmesh.interfaces.identities import Identities, Identity, require

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]

log = logging.getLogger("agentmesh.interfaces")

DEFAULT_MAX_BODY_BYTES = 64 * 1024
HEARTBEAT_S = 15.0
RunId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(max_length=8000)]


# -- bodies ---------------------------------------------------------------------------------------------


class GoalRequest(BaseModel):
    """A goal to run."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"goal": "checkout-api p95 is at 900 ms, keep it under 300 ms without doubling cost"}]})

    goal: Text
    """What you want done, in your own words."""
    graph: Annotated[str, StringConstraints(max_length=200)] | None = None
    """The graph to run (GET /v1/models lists them); default: the server's."""
    model: Annotated[str, StringConstraints(max_length=200)] | None = None
    """`offline`, or an OpenAI-compatible model name the server has a key for; default: the server's."""
    approvals: Literal["wait", "auto", "deny"] | None = None
    """What calls needing approval do: wait for a person (default), approve what policy allows, or reject."""
    context: Annotated[list[Text], Field(max_length=50)] | None = None
    """Earlier conversation (previous goals and decisions) shown to the planner."""


class Links(BaseModel):
    self: str
    events: str
    approvals: str
    cancel: str
    audit: str


class GoalAccepted(BaseModel):
    """A goal accepted and started in the background."""

    id: str
    """The run id: use it in every other goal endpoint."""
    status: str
    """``queued`` until the run's flow starts, then the run's status."""
    links: Links


class ApprovalRequest(BaseModel):
    """A verdict on a run's pending call(s)."""

    model_config = ConfigDict(extra="forbid")

    call_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    """One pending call (an id or its unique ending); default: every pending call of the run."""
    approved: bool
    """True approves, false rejects."""
    args: dict[str, Any] | None = None
    """Approve one call with these arguments changed (``{"replicas": 5}``); the others stay as the agent asked.
    The edited call passes the gateway again before it runs; the audit keeps both and who edited them."""
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    """Why; recorded in the audit."""
    approver: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    """Who decides, on a server without tokens (default: ``http``); with tokens it is the signed-in identity."""
    force: bool = False
    """Resume the run even if a live process owns it (409 otherwise); that process's later writes are rejected."""


# -- errors ---------------------------------------------------------------------------------------------


def error_response(status: int, message: str, *, code: str, kind: str = "invalid_request_error",
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status,
                        headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for item in exc.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {item.get('msg')}")
        message = "; ".join(problems[:5]) or "invalid request"
        return error_response(422, f"invalid request: {message}", code="invalid_request")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                413: "too_large"}.get(
            exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), code=code, headers=getattr(exc, "headers", None))

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return error_response(404, str(exc), code="not_found")

    @app.exception_handler(RunOwned)
    async def owned(request: Request, exc: RunOwned) -> JSONResponse:
        return error_response(409, str(exc), code="run_owned")

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> JSONResponse:
        return error_response(400, str(exc), code="bad_request")

    @app.exception_handler(PolicyViolation)
    async def refused(request: Request, exc: PolicyViolation) -> JSONResponse:
        return error_response(403, str(exc), code="forbidden")

    @app.exception_handler(AgentmeshError)
    async def run_error(request: Request, exc: AgentmeshError) -> JSONResponse:
        return error_response(409, str(exc), code="run_error")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}; see the server log", code="internal_error",
                              kind="server_error")


# -- middleware -----------------------------------------------------------------------------------------


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, whether announced (Content-Length) or streamed."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        with contextlib.suppress(ValueError):
            if declared is not None and int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = error_response(413, f"request body too large: the limit is {self.max_bytes} bytes",
                                  code="too_large", headers={"Connection": "close"})
        await response(scope, receive, send)


# -- the app --------------------------------------------------------------------------------------------


def _signed_in(identities: Identities) -> Callable[..., Awaitable[Identity]]:
    bearer = HTTPBearer(auto_error=False, description="An identity's token (AGENTMESH_IDENTITIES_FILE), or the "
                        "server's API token (AGENTMESH_API_TOKEN or --token).")

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Identity:
        identity = identities.resolve(credentials.credentials if credentials else None)
        if identity is None:
            raise HTTPException(401, "missing or wrong API token: send `Authorization: Bearer <token>`",
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.identity = identity
        return identity

    return check


def _links(run_id: str) -> Links:
    base = f"/v1/goals/{run_id}"
    return Links(self=base, events=f"{base}/events", approvals=f"{base}/approvals", cancel=f"{base}/cancel",
                 audit=f"/v1/runs/{run_id}/audit")


def _sse(event: dict[str, Any]) -> str:
    import json

    data = f"data: {json.dumps(event, default=str, ensure_ascii=False)}\n\n"
    return data if event.get("seq") is None else f"id: {event['seq']}\n{data}"  # a token has no number


def create_app(settings: Settings, *, token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               identities: Identities | None = None, processes: int = 0, limit: int = 8) -> FastAPI:
    """The agentmesh HTTP app. Every ``/v1`` endpoint needs a token of ``identities`` (default: the settings'
    identities file, plus ``token`` or ``AGENTMESH_API_TOKEN`` as the identity ``api``) when any is configured.
    ``processes``: goals run in that many goal-worker processes the app starts (``agentmesh.runtime.goal_workers``),
    each running up to ``limit`` goals at once, not in the app's own."""
    from agentmesh.core import __version__
    from agentmesh.interfaces.openai_compat import router as openai_router

    identities = identities if identities is not None else Identities.load(settings, token=token)
    service = GoalService(settings, on_workers=processes > 0)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from agentmesh.runtime.components import components
        from agentmesh.runtime.prefect import configure_prefect

        # Before the first request: the local Prefect server (seconds on a first start), the tools and the policy.
        await asyncio.to_thread(configure_prefect, settings)
        await asyncio.to_thread(components, settings)
        with contextlib.ExitStack() as workers:
            if processes:
                from agentmesh.runtime.goal_workers import local_workers

                workers.enter_context(local_workers(processes, limit=limit, settings=settings))
            yield
            await service.shutdown()

    app = FastAPI(
        title="agentmesh",
        version=__version__,
        summary="Submit goals to a team of LLM agents, follow them live, approve their actions.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.auth = identities.enabled
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    signed_in = _signed_in(identities)
    api = APIRouter(prefix="/v1", dependencies=[Depends(signed_in)])

    @api.get("/me", tags=["server"])
    async def me(identity: Identity = Depends(signed_in)) -> dict[str, Any]:
        """The identity the request's token stands for, and its roles."""
        return {"name": identity.name, "roles": sorted(identity.roles), "auth": not identity.anonymous}

    @api.post("/goals", status_code=202, response_model=GoalAccepted, tags=["goals"])
    async def submit_goal(body: GoalRequest, identity: Identity = Depends(signed_in)) -> GoalAccepted:
        """Start a goal in the background; follow it with the events link (needs the ``submit`` role)."""
        require(identity, "submit")
        run_id = service.submit(body.goal, graph=body.graph, model=body.model, approvals=body.approvals,
                                context=body.context, started_by=None if identity.anonymous else identity.name)
        return GoalAccepted(id=run_id, status=service.status(run_id), links=_links(run_id))

    @api.get("/goals/{run_id}", tags=["goals"])
    async def get_goal(run_id: RunId) -> dict[str, Any]:
        """The run's JSON: status, plan, steps with tool calls, pending approvals, decision, usage."""
        return service.get(service.resolve(run_id))

    @api.get("/goals/{run_id}/events", tags=["goals"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}})
    async def goal_events(
        run_id: RunId,
        last_event_id: Annotated[str | None, Header(max_length=20)] = None,
        after: Annotated[int | None, Query(ge=0, le=10**9, description="Resume after this sequence number.")] = None,
    ) -> StreamingResponse:
        """The run's events as Server-Sent Events: each a `data:` line of JSON, `id:` its sequence number.
        `token` events (model output as it streams: `text`, or `tool` and `args` pieces) are live only, without
        an `id:`; a reconnect does not replay them. Resumes after `Last-Event-ID`; ends after the run finishes (it stays open while it waits for approval)."""
        run_id = service.resolve(run_id)
        start = after or 0
        if last_event_id is not None:
            try:
                start = max(start, int(last_event_id.strip()))
            except ValueError:
                raise UserError(f"Last-Event-ID must be an event sequence number, not {last_event_id!r}") from None

        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            idle = 0.0
            async for event in service.follow(run_id, after=start):
                if event is None:
                    idle += 1.0
                    if idle >= HEARTBEAT_S:
                        idle = 0.0
                        yield ": keep-alive\n\n"
                    continue
                idle = 0.0
                yield _sse(event)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @api.post("/goals/{run_id}/approvals", tags=["goals"])
    async def approve_goal(run_id: RunId, body: ApprovalRequest, identity: Identity = Depends(signed_in)) -> dict[str, Any]:
        """Approve or reject a pending call (or all of them); the run resumes in the background (needs the
        ``approve`` role; under ``four_eyes`` the identity that started the run cannot approve, 403; a run a live
        process owns is 409 unless ``force``)."""
        require(identity, "approve")
        if identity.anonymous:
            approver = body.approver or "http"
        elif body.approver in (None, identity.name):
            approver = identity.name
        else:
            raise HTTPException(403, f"you are signed in as {identity.name}: you cannot approve as {body.approver}")
        return await service.approve(run_id, body.call_id, approved=body.approved, approver=approver,
                                     reason=body.reason, args=body.args, force=body.force)

    @api.post("/goals/{run_id}/cancel", tags=["goals"])
    async def cancel_goal(run_id: RunId, identity: Identity = Depends(signed_in)) -> dict[str, Any]:
        """Cancel a running or paused run; it is recorded `cancelled` (needs the ``submit`` role)."""
        require(identity, "submit")
        return await service.cancel(run_id)

    @api.get("/runs", tags=["runs"])
    async def list_runs(
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        status: Annotated[str | None, Query(max_length=32)] = None,
    ) -> dict[str, Any]:
        """The latest runs, newest first."""
        from agentmesh.persistence.runs import runs_listing

        return {"object": "list", "data": runs_listing(service.engine, limit=limit, status=status)}

    @api.get("/runs/{run_id}", tags=["runs"])
    async def get_run(run_id: RunId) -> dict[str, Any]:
        """One run's JSON (the same as GET /v1/goals/{id})."""
        return service.get(service.resolve(run_id))

    @api.get("/runs/{run_id}/audit", tags=["runs"])
    async def run_audit(run_id: RunId) -> dict[str, Any]:
        """Every attempted tool call of a run: arguments, status, reason, result, approver."""
        from agentmesh.persistence.audit import list_calls

        run_id = service.resolve(run_id)
        return {"object": "list", "run_id": run_id,
                "data": [c.model_dump(mode="json") for c in list_calls(service.engine, run_id)]}

    app.include_router(api)
    app.include_router(openai_router, prefix="/v1", dependencies=[Depends(signed_in)])

    @app.get("/healthz", tags=["server"])
    async def healthz() -> dict[str, Any]:
        """Liveness: always open, no token needed."""
        return {"status": "ok", "version": __version__, "model": settings.model_name, "offline": settings.offline,
                "graph": settings.graph, "auth": identities.enabled}

    static = resources.files("agentmesh.interfaces") / "static"

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(static / "index.html"), headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app
