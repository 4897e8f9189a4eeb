"""API keys at the door: which caller may use which route (scopes), and the web view's login.

Two parts, one rule. ``KeyGate`` (ASGI middleware) runs before routing: once any key exists,
every request except the open paths (``/health``, ``/metrics`` unless configured otherwise,
and the login form) must carry a valid key, or it is answered 401 — whatever route it was
meant for, so a route added without thought (docs, static files, a 404) is never open. Each
route then declares the one scope it needs with ``require_scope`` (``dependencies=[...]`` on
its router or route), which answers 403 to a valid key lacking it, and shows in OpenAPI.

A configured header secret (``ApiOptions.header_secrets``: a folder such as ``/api/v1/ingest/``,
a header name and its secret) admits a request under that folder without a key, for a network
server's webhook that can send a fixed header but no key of ours.

A key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; a browser, which
cannot send either, logs in once on ``/login`` and carries the key in an HttpOnly,
SameSite=Strict cookie, which is honoured for GET and HEAD only (no state change can ride on
a cookie, so cross-site request forgery has nothing to aim at).
"""

from __future__ import annotations

import hmac
import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qs, urlsplit

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request, Security, routing
from fastapi.params import Security as SecurityParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from storage.api_keys import SCOPES, ApiKey

__all__ = [
    "COOKIE",
    "AuthFailed",
    "Caller",
    "KeyChecker",
    "KeyGate",
    "RouteRule",
    "login_router",
    "require_scope",
    "route_rules",
]

COOKIE = "lorameter_key"
LOGIN_PATHS = frozenset({"/login", "/logout"})
_CALLER = "lorameter_caller"
_HOW = (
    "send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`;"
    " an administrator creates keys with `lorameter keys create --scope read --name NAME`"
)


class KeyChecker(Protocol):
    """What the door needs of the key store (storage.api_keys.SQLiteKeys)."""

    def any_active(self) -> bool:
        """Whether any key exists that is not revoked."""
        ...

    def verify(self, token: str) -> ApiKey | None:
        """The active key this token is, else None."""
        ...


@dataclass(frozen=True)
class Caller:
    """Who is calling: a verified key, or None when the door is open to this request."""

    key: ApiKey | None

    def allows(self, scope: str) -> bool:
        return self.key is None or self.key.allows(scope)


class AuthFailed(Exception):
    """No key, a wrong key (401), or a key without the route's scope (403)."""

    def __init__(self, status: int, detail: str, error: str = "", scope: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error = error  # RFC 6750 error code: invalid_token | insufficient_scope
        self.scope = scope

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value (RFC 6750 section 3)."""
        parts = ['Bearer realm="lorameter"']
        if self.error:
            parts.append(f'error="{self.error}"')
        if self.scope:
            parts.append(f'scope="{self.scope}"')
        return ", ".join(parts)


# The security schemes OpenAPI shows (Swagger UI's "Authorize" fills either); the gate above
# has already checked the key, these only read the headers for the schema.
_bearer = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="`Authorization: Bearer <API key>`"
)
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="`X-API-Key: <key>`"
)


def _authorize(
    request: Request,
    security_scopes: SecurityScopes,
    _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _header_key: Annotated[str | None, Depends(_api_key)],
) -> Caller:
    caller = request.scope.get("state", {}).get(_CALLER)
    if not isinstance(caller, Caller):  # fail closed: never serve a route the gate did not see
        raise RuntimeError("KeyGate is not installed in front of this app")
    for scope in security_scopes.scopes:
        if not caller.allows(scope):
            assert caller.key is not None
            raise AuthFailed(
                403,
                f"the API key {caller.key.name!r} lacks the scope {scope!r} this route needs"
                f" (it has {', '.join(caller.key.scopes)}); create one with --scope {scope}",
                "insufficient_scope",
                scope,
            )
    return caller


def require_scope(scope: str) -> SecurityParam:
    """The dependency a router or route declares: ``dependencies=[require_scope("ingest")]``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}")
    declared: SecurityParam = Security(_authorize, scopes=[scope])
    return declared


def caller_of(request: Request) -> Caller:
    """The caller the gate let in (the web view hides raw payloads from keys without ``raw``)."""
    caller = request.scope.get("state", {}).get(_CALLER)
    return caller if isinstance(caller, Caller) else Caller(None)


@dataclass(frozen=True)
class RouteRule:
    """One route of an app and what it asks of a caller."""

    path: str
    methods: frozenset[str]  # empty for a mount (static files)
    scopes: tuple[str, ...]  # declared with require_scope; empty: any valid key
    api: bool  # a FastAPI route (else a Starlette route or a mount)
    in_schema: bool


def route_rules(app: FastAPI) -> list[RouteRule]:
    """Every route of ``app`` as served (its routers' dependencies included)."""
    # FastAPI >= 0.16x keeps included routers lazily; iter_route_contexts flattens them.
    contexts: list[Any] = list(getattr(routing, "iter_route_contexts", iter)(app.routes))
    rules = []
    for context in contexts:
        original = getattr(context, "original_route", context)
        api = isinstance(original, APIRoute)
        dependant = getattr(context, "dependant", None) if api else None
        scopes = tuple(
            scope
            for dep in (dependant.dependencies if dependant is not None else [])
            if dep.call is _authorize
            for scope in (getattr(dep, "own_oauth_scopes", None) or dep.security_scopes or [])
        )
        rules.append(
            RouteRule(
                path=str(getattr(context, "path", "")),
                methods=frozenset(getattr(context, "methods", None) or ()),
                scopes=scopes,
                api=api,
                in_schema=api and bool(getattr(context, "include_in_schema", False)),
            )
        )
    return rules


def _identify(keys: KeyChecker, token: str, open_without_keys: bool) -> Caller:
    """Who the token is; AuthFailed when the door stays shut (runs in a worker thread)."""
    if token:
        key = keys.verify(token)
        if key is not None:
            return Caller(key)
    if keys.any_active():
        if token:
            raise AuthFailed(401, "the API key is not valid (unknown or revoked)", "invalid_token")
        raise AuthFailed(401, f"this lorameter needs an API key: {_HOW}")
    if open_without_keys:
        return Caller(None)  # no keys and bound to loopback: the demo's open door
    raise AuthFailed(
        401,
        "no API key exists, and this API is reachable beyond this machine: an administrator"
        " creates one with `lorameter keys create --scope read --name NAME`",
    )


def _token(scope: Scope) -> str:
    headers = Headers(scope=scope)
    auth = headers.get("authorization", "")
    kind, _, value = auth.partition(" ")
    if kind.lower() == "bearer" and value.strip():
        return value.strip()
    if headers.get("x-api-key", "").strip():
        return headers["x-api-key"].strip()
    if scope["method"] in ("GET", "HEAD") or _same_origin(headers):
        return cookie_parser(headers.get("cookie", "")).get(COOKIE, "")
    return ""


def _same_origin(headers: Headers) -> bool:
    """A form posted by one of our own pages (the web view's alarm ack): the browser names the
    page's origin, and it is this server. With the SameSite=Strict cookie, a foreign site can
    neither send the cookie nor pass as us."""
    origin = headers.get("origin", "")
    return bool(origin) and urlsplit(origin).netloc == headers.get("host", "")


class KeyGate:
    """Plain ASGI middleware: identify the caller before routing; 401 unless the door is open."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyChecker | None,
        open_paths: frozenset[str] = frozenset({"/health", "/metrics"}),
        open_without_keys: bool = True,
        header_secrets: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths | LOGIN_PATHS
        self.open_without_keys = open_without_keys
        self.header_secrets = {
            prefix: (header.lower(), secret)
            for prefix, (header, secret) in (header_secrets or {}).items()
            if secret
        }
        for prefix in self.header_secrets:
            if not (prefix.startswith("/api/") and prefix.endswith("/")):
                raise ValueError(f"a header secret guards a folder like /api/v1/ingest/: {prefix}")

    def _secret_admits(self, path: str, scope: Scope) -> bool:
        """A configured header secret of this path's folder (a webhook that sends no key)."""
        if "/." in path:  # no dot segments may step out of the folder
            return False
        headers = Headers(scope=scope)
        for prefix, (header, secret) in self.header_secrets.items():
            sent = headers.get(header, "")
            if path.startswith(prefix) and sent:
                return hmac.compare_digest(sent.encode(), secret.encode())
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
        caller = Caller(None)
        if (
            self.keys is not None
            and path not in self.open_paths
            and not self._secret_admits(path, scope)
        ):
            keys = self.keys
            token = _token(scope)
            try:
                caller = await anyio.to_thread.run_sync(
                    _identify, keys, token, self.open_without_keys
                )
            except AuthFailed as failed:
                await refusal(Request(scope), failed)(scope, receive, send)
                return
        scope.setdefault("state", {})[_CALLER] = caller
        await self.app(scope, receive, send)


def refusal(request: Request, failed: AuthFailed) -> Response:
    """401/403: the login form for a browser, JSON with a ``WWW-Authenticate`` otherwise."""
    headers = {"WWW-Authenticate": failed.challenge(), "Cache-Control": "no-store"}
    if "text/html" in request.headers.get("accept", ""):
        message = {
            "": "This lorameter asks for an API key: log in with yours.",
            "invalid_token": "That API key is not valid (unknown or revoked): log in again.",
        }.get(failed.error, failed.detail)
        if "no API key exists" in failed.detail:
            message = failed.detail
        return HTMLResponse(_login_page(request, message, request.url.path), failed.status, headers)
    return JSONResponse({"detail": failed.detail}, failed.status, headers)


def install(
    app: FastAPI,
    keys: KeyChecker | None,
    open_paths: frozenset[str],
    open_without_keys: bool,
    header_secrets: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """The gate, the 403 answer of ``require_scope`` and the login form, on ``app``."""

    async def on_auth_failed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AuthFailed)
        return refusal(request, exc)

    app.add_exception_handler(AuthFailed, on_auth_failed)
    app.include_router(login_router)
    app.add_middleware(
        KeyGate,
        keys=keys,
        open_paths=open_paths,
        open_without_keys=open_without_keys,
        header_secrets=header_secrets,
    )


# -- the web view's login form ---------------------------------------------------------------

login_router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · lorameter</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2733;margin:0}}
main{{max-width:26rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:8px;
box-shadow:0 1px 4px #0002}}
h1{{font-size:1.3rem;margin:0 0 1rem}} p.msg{{background:#fdecea;padding:.6rem;border-radius:4px}}
input{{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;margin:.3rem 0 1rem}}
button{{padding:.5rem 1.2rem;font:inherit}} small{{color:#5b6776}}
</style></head><body><main>
<h1>lorameter</h1>
<p class="msg" role="alert">{message}</p>
<form method="post" action="{root}/login">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button>
</form>
<p><small>The key stays in this browser (a cookie) until you log out or close it.
Ask your administrator for a key with the <code>read</code> scope
(<code>lorameter keys create --scope read --name YOUR-NAME</code>).</small></p>
</main></body></html>
"""


def _login_page(request: Request, message: str, next_path: str) -> str:
    return _PAGE.format(
        message=html.escape(message),
        root=html.escape(request.scope.get("root_path", "")),
        next=html.escape(_local(next_path)),
    )


def _local(path: str) -> str:
    """Only a path on this server may be the target after login (no open redirect)."""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) else "/"


@login_router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    """The form that takes a key and keeps it in a cookie."""
    return HTMLResponse(_login_page(request, "Log in with an API key.", next))


@login_router.post("/login")
async def login(request: Request) -> Response:
    """Check the key of the form; set the cookie and go on, or show the form again."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return HTMLResponse(_login_page(request, "Log in from this server's own page.", "/"), 403)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = form.get("key", [""])[0].strip()
    next_path = _local(form.get("next", ["/"])[0])
    keys: KeyChecker | None = request.app.state.api_keys
    key = await anyio.to_thread.run_sync(keys.verify, token) if keys and token else None
    if key is None:
        return HTMLResponse(
            _login_page(request, "That API key is not valid (unknown or revoked).", next_path),
            401,
        )
    root = request.scope.get("root_path", "")
    response = RedirectResponse(f"{root}{next_path}", 303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=f"{root}/",
    )
    return response


@login_router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the key this browser holds."""
    root = request.scope.get("root_path", "")
    response = RedirectResponse(f"{root}/login", 303)
    response.delete_cookie(COOKIE, path=f"{root}/")
    return response
