"""Container health check: exit 0 when nnserve answers 200 on /v2/health/ready and, when gRPC is on
(NNSERVE_GRPC_PORT not 0), SERVING from the standard gRPC health service; 1 otherwise.

Slim images carry no curl or wget, and the health check must not depend on the service's own imports
(a broken install should read as unhealthy, not crash differently), so this uses the standard library
only. It reads the same NNSERVE_HOST / NNSERVE_PORT settings the server does, so changing the port in
one place keeps the check pointed at the server.

    python healthcheck.py                     # http://127.0.0.1:$NNSERVE_PORT/v2/health/ready
    python healthcheck.py http://host:8000/v2/health/live

The gRPC check imports grpcio (a dependency of the service, so in every image) only when gRPC is on.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}
_TIMEOUT_S = 3.0
"""Below the images' HEALTHCHECK --timeout, so a hung server reads as unhealthy, not as a killed check."""


def _host() -> str:
    host = os.environ.get("NNSERVE_HOST", "")
    host = "127.0.0.1" if host in _WILDCARD_HOSTS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host


def default_url() -> str:
    """The readiness URL of the server this container runs, from its NNSERVE_* settings."""
    port = os.environ.get("NNSERVE_PORT", "8000")
    return f"http://{_host()}:{port}/v2/health/ready"


def grpc_target() -> str | None:
    """`host:port` of the server's gRPC endpoint (the server's default port is 8001), None when it is off."""
    port = os.environ.get("NNSERVE_GRPC_PORT", "8001")
    return None if port == "0" else f"{_host()}:{port}"


def is_serving_grpc(target: str, timeout_s: float) -> bool:
    """The standard gRPC health check (what Kubernetes' gRPC probes call) answers SERVING."""
    try:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(target) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
    except Exception:  # no grpcio, refused, timed out: all unhealthy
        return False


def is_healthy(url: str, timeout_s: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else default_url()
    healthy = is_healthy(url, timeout_s=_TIMEOUT_S)
    if not healthy:
        print(f"unhealthy: {url} did not answer 200", file=sys.stderr)
        return 1
    target = grpc_target() if len(argv) <= 1 else None
    if target is not None and not is_serving_grpc(target, timeout_s=_TIMEOUT_S):
        print(f"unhealthy: gRPC health at {target} is not SERVING", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
