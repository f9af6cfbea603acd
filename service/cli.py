"""`nnserve serve` starts the server; `nnserve models list|validate` inspects a repository without serving it.

Every `serve` flag is generated from `Settings`, so flags, NNSERVE_* variables and the docs cannot drift;
a flag given on the command line wins over the variable. What imports ONNX Runtime is imported only once a
command runs, after `require_onnxruntime` could say which extra to install (`--help` needs none).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.runtime.installed import require_onnxruntime
from service.schema.config import list_versions, load_config, select_versions
from service.settings import Settings


def _add_settings_flags(parser: argparse.ArgumentParser, fields: Sequence[str] | None = None) -> None:
    for name, field in Settings.model_fields.items():
        if fields is not None and name not in fields:
            continue
        flag = "--" + name.replace("_", "-")
        env = f"NNSERVE_{name.upper()}"
        default = field.default if not isinstance(field.default, list) else ",".join(field.default)
        text = f"{field.description} [env {env}, default {default}]"
        if field.annotation is bool:
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            parser.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=text)


def _settings(args: argparse.Namespace) -> Settings:
    """Environment first, then the flags actually given on top."""
    overrides = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"nnserve: invalid setting: {problems}") from None


def _serve(args: argparse.Namespace) -> int:
    from service.app import create_app
    from service.logs import configure_logging
    from service.server import serve

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except FileNotFoundError as exc:
        raise SystemExit(f"nnserve: {exc}") from None
    serve(app, settings)
    return 0


def _repository(args: argparse.Namespace) -> tuple[Settings, list[str]]:
    from service.repository.registry import ModelRepository

    settings = _settings(args)
    if not settings.repository.is_dir():
        raise SystemExit(f"nnserve: repository {settings.repository} is not a directory")
    return settings, ModelRepository(settings).scan()


def _list(args: argparse.Namespace) -> int:
    """What the repository holds, from the files alone (no session is created)."""
    settings, names = _repository(args)
    rows = [_describe(settings.repository / name) for name in names]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'MODEL':<24} {'TASK':<22} {'ON DISK':<10} {'SERVED':<10} CONFIG")
    for row in rows:
        print(
            f"{row['name']:<24} {row['task'] or '-':<22} {','.join(row['versions']) or '-':<10} "
            f"{','.join(row['served']) or '-':<10} {row['config']}"
        )
    return 0


def _describe(model_dir: Path) -> dict[str, Any]:
    versions = list_versions(model_dir)
    row: dict[str, Any] = {
        "name": model_dir.name,
        "versions": [str(v) for v in versions],
        "served": [],
        "task": None,
    }
    try:
        config = load_config(model_dir)
    except ValueError as exc:
        return row | {"config": f"error: {exc}"}
    served = select_versions(config.version_policy, versions)
    return row | {
        "task": config.task,
        "served": [str(v) for v in served],
        "config": "ok",
        "description": config.description,
    }


def _validate(args: argparse.Namespace) -> int:
    """Load every model as the server would (sessions, graph checks, task set-up); exit 1 on any problem."""
    from service.repository.loader import load_model_dir
    from service.tasks.pipelines import Pipelines

    settings, names = _repository(args)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        raise SystemExit(f"nnserve: no model {unknown} in {settings.repository}")
    results: list[dict[str, Any]] = []
    for name in args.names or names:
        outcome = load_model_dir(settings.repository / name, settings, Pipelines().prepare)
        results += [
            {"name": name, "version": str(v), "ok": True, "provider": m.provider, "reason": ""}
            for v, m in sorted(outcome.ready.items())
        ]
        results += [
            {"name": name, "version": str(v), "ok": False, "provider": None, "reason": reason}
            for v, reason in sorted(outcome.failed.items())
        ]
        if outcome.error:
            results.append(
                {"name": name, "version": "", "ok": False, "provider": None, "reason": outcome.error}
            )
        for model in outcome.ready.values():
            model.retire()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            status = f"ok ({r['provider']})" if r["ok"] else f"FAILED: {r['reason']}"
            print(f"{r['name']:<24} {r['version'] or '-':<8} {status}")
    return 0 if all(r["ok"] for r in results) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a model repository over HTTP")
    _add_settings_flags(serve)
    serve.set_defaults(func=_serve)

    models = commands.add_parser("models", help="inspect a model repository").add_subparsers(
        dest="action", required=True
    )
    listing = models.add_parser("list", help="models, versions on disk and served by policy, config status")
    validate = models.add_parser("validate", help="load every model like the server; exit 1 on any problem")
    validate.add_argument("names", nargs="*", help="models to check (default: all)")
    for sub, func in ((listing, _list), (validate, _validate)):
        _add_settings_flags(sub, ["repository", "providers"])
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        sub.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    require_onnxruntime()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
