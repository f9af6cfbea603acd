"""The floor: a bare FastAPI endpoint that calls `session.run` inline, as a tutorial would write it.

No batching, no worker thread, no validation beyond what the workload parses: the least a Python web
server can do per request. The benchmark runs it beside the service; the service should cost little
more than this at concurrency 1 and beat it under load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response

from loadtests.workloads import PROVIDERS, Workload, load_workload, locate, open_session


def create_app(workload: Workload, session: object) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        return Response(b'{"ready":true}', media_type="application/json")

    @app.post(workload.path)
    async def infer(request: Request) -> Response:
        return Response(workload.handle(session, await request.body()), media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.floor", description=__doc__.split("\n")[0])
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the session")
    parser.add_argument("--provider", choices=sorted(PROVIDERS), default="cpu")
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args(argv)

    workload = load_workload(args.repository, args.model, args.max_tokens)
    session = open_session(locate(args.repository, args.model).onnx_path, args.threads, args.provider)
    uvicorn.run(
        create_app(workload, session),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
