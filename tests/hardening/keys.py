"""API keys the shared hardening server is started with."""

ADMIN_KEYS = ("admin-key-one", "admin-key-two")
"""NNSERVE_API_KEYS: may do everything, the repository API included."""
LEGACY_KEY = "legacy-single-key"
"""NNSERVE_API_KEY (the older single-key setting), still honoured alongside the list."""
INFERENCE_KEY = "inference-only-key"
"""NNSERVE_INFERENCE_API_KEYS: may run models, may not change the repository (403)."""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def server_env() -> dict[str, str]:
    return {
        "NNSERVE_API_KEYS": ",".join(ADMIN_KEYS),
        "NNSERVE_API_KEY": LEGACY_KEY,
        "NNSERVE_INFERENCE_API_KEYS": INFERENCE_KEY,
    }
