"""The OpenAPI document: FastAPI's, completed with the answers that no single route declares itself.

Why: the schema is a contract that clients generate code from and that the fuzzing test
(tests/hardening/test_fuzz_openapi.py) holds the server to, so every status the server can send must be
declared with its body. Several come from shared layers rather than from the route:
- 413 and 415 from reading any body (`service.middleware`, `service.api.body`), and 400 for a body that
  is not what the route reads;
- 400 for a `{version}` that is not a number, 503 for a model that exists but is not loaded;
- 401/403 from `service.access`, declared with the security schemes only when keys are configured
  (the document describes this server, as configured);
- FastAPI's 422, which the error handler answers as `{"error": ...}`, not FastAPI's `{"detail": [...]}`.
Request schemas written by pydantic carry their sub-models under `$defs`; they are moved to the
components, where `#/$defs/...` references would otherwise point at nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.access import Role, required_role
from service.api import examples as ex
from service.protocol.openai import OPENAI_PATHS, error_body
from service.protocol.schemas import ErrorBody
from service.settings import Settings

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
OPENAI_ERROR_REF = {"$ref": "#/components/schemas/OpenAIError"}
OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <API key>`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
BODY_ERRORS = (400, 413, 415)
METHODS = ("get", "post", "put", "delete", "patch", "options", "head")


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the completed document at /openapi.json and /docs (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = complete(document, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
    schemas["OpenAIError"] = OPENAI_ERROR
    guarded = bool(settings.admin_keys or settings.inference_keys)
    if guarded:
        components["securitySchemes"] = SECURITY_SCHEMES
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            _hoist_definitions(operation.get("requestBody"), schemas)
            role = required_role(path, settings.auth_inference) if guarded else None
            _complete_operation(path, operation, role)
    return document


def _complete_operation(path: str, operation: dict[str, Any], role: Role | None) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    wanted: list[int] = []
    if "requestBody" in operation:
        wanted += BODY_ERRORS
    if "{version}" in path:
        wanted.append(400)
    if "{name}" in path:
        wanted += [404, 503]
    if role is not None:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        wanted += [401, 403] if role is Role.ADMIN else [401]
    openai = path in OPENAI_PATHS
    for status in wanted:
        if str(status) not in responses:
            responses[str(status)] = _error_response(status, openai)
    for code, response in responses.items():
        if code == "422" or (openai and not code.startswith("2")):
            media = response.setdefault("content", {}).setdefault("application/json", {})
            media["schema"] = OPENAI_ERROR_REF if openai else ERROR_REF
            if code == "422":
                response["description"] = "A path parameter of the wrong type"


def _error_response(status: int, openai: bool) -> dict[str, Any]:
    documented = ex.errors(status)[status]
    message = documented["content"]["application/json"]["examples"]["example"]["value"]["error"]
    example = error_body(status, message) if openai else {"error": message}
    return {
        "description": documented["description"],
        "content": {
            "application/json": {
                "schema": OPENAI_ERROR_REF if openai else ERROR_REF,
                "examples": {"example": {"value": example}},
            }
        },
    }


def _hoist_definitions(body: dict[str, Any] | None, schemas: dict[str, Any]) -> None:
    """Move pydantic's `$defs` of each request schema into the components, and point its refs there."""
    if body is None:
        return
    for media in body.get("content", {}).values():
        schema = media.get("schema")
        if not isinstance(schema, dict):
            continue
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, _rewrite_refs(definition))
        media["schema"] = _rewrite_refs(schema)


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: value.replace("#/$defs/", "#/components/schemas/") if key == "$ref" else _rewrite_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node
