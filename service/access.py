"""Who may call what, checked before any route runs (plain ASGI, so no route can forget it).

- With no key configured, everything is open (the default, as before).
- Repository changes (`/v2/repository/models/...`: load, unload) need a full-access key
  (`NNSERVE_API_KEYS`, or the older single `NNSERVE_API_KEY`) as soon as any key is configured; an
  inference-only key (`NNSERVE_INFERENCE_API_KEYS`) gets 403 there.
- With `NNSERVE_AUTH_INFERENCE=true`, every other path needs a key of either kind, except what probes,
  scrapers and people reading the docs need: `OPEN_PATHS` and the playground's static files.

Paths are matched as routing matches them, without the app's root path (`route_path`): matching the raw
`scope["path"]` would let `--root-path /x` turn every repository change into an open path.

A key comes as `Authorization: Bearer <key>` (what the OpenAI client sends) or `X-API-Key: <key>`. It is
compared with every configured key by `hmac.compare_digest`, all of them every time, so the answer's
timing tells nothing about how much of a key was right. A rejected key is never echoed or logged.
"""

from __future__ import annotations

import hmac
from enum import Enum

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Forbidden, ServiceError, Unauthorized, headers_for, status_for
from service.middleware import route_path
from service.responses import OrjsonResponse, error_response_for
from service.settings import Settings

OPEN_PATHS = frozenset(
    {"/v2", "/v2/health/live", "/v2/health/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect",
     "/redoc", "/", "/favicon.ico"}
)  # fmt: skip
OPEN_PREFIXES = ("/ui/static/",)
REPOSITORY_CHANGES = "/v2/repository/models/"


class Role(Enum):
    INFERENCE = "inference"
    ADMIN = "admin"


def required_role(path: str, auth_inference: bool) -> Role | None:
    """The role a path needs; None = open."""
    if path.startswith(REPOSITORY_CHANGES):
        return Role.ADMIN
    if not auth_inference or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    return Role.INFERENCE


class KeyRing:
    def __init__(self, admin: tuple[str, ...], inference: tuple[str, ...]) -> None:
        self._keys = [(key.encode(), Role.ADMIN) for key in admin]
        self._keys += [(key.encode(), Role.INFERENCE) for key in inference if key not in admin]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def role(self, candidates: list[bytes]) -> Role | None:
        """The strongest role any candidate key holds; every comparison runs (no early exit)."""
        roles = {role for given in candidates for key, role in self._keys if hmac.compare_digest(given, key)}
        if Role.ADMIN in roles:
            return Role.ADMIN
        return Role.INFERENCE if roles else None


def presented_keys(headers: dict[bytes, bytes]) -> list[bytes]:
    """The bearer token (scheme matched case-insensitively) and the X-API-Key value, when sent."""
    keys = []
    scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
    if scheme.lower() == b"bearer" and token.strip():
        keys.append(token.strip())
    if api_key := headers.get(b"x-api-key", b"").strip():
        keys.append(api_key)
    return keys


def refusal_for(keys: KeyRing, needed: Role, presented: list[bytes]) -> ServiceError | None:
    """None when a presented key holds the role `needed`, else the error to answer with (any transport)."""
    role = keys.role(presented)
    if role is not None and (needed is Role.INFERENCE or role is Role.ADMIN):
        return None
    if role is None:
        what = "invalid API key" if presented else "missing API key"
        return Unauthorized(f"Authorization: {what}; send `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    return Forbidden("Authorization: this API key may run models but not change the repository")


class AccessControl:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.keys = KeyRing(settings.admin_keys, settings.inference_keys)
        self.auth_inference = settings.auth_inference

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys:
            await self.app(scope, receive, send)
            return
        path = route_path(scope)  # what routing matches: without the root path (uvicorn --root-path)
        needed = required_role(path, self.auth_inference)
        if needed is None:
            await self.app(scope, receive, send)
            return
        presented = presented_keys(dict(scope["headers"]))
        refusal = refusal_for(self.keys, needed, presented)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await self._refuse(refusal, path, bool(presented))(scope, receive, send)

    @staticmethod
    def _refuse(exc: ServiceError, path: str, presented: bool) -> OrjsonResponse:
        status, headers = status_for(exc), headers_for(exc)
        if presented and "WWW-Authenticate" in headers:
            headers["WWW-Authenticate"] += ', error="invalid_token"'
        code = "invalid_api_key" if status == 401 else "insufficient_permissions"  # OpenAI's codes
        return error_response_for(path, status, str(exc), headers, code)
