"""Inputs for the gRPC tests, and the same request sent over HTTP, to compare the two protocols."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import tritonclient.grpc as grpcclient
from sklearn.datasets import load_digits


def digit_pixels(count: int) -> np.ndarray:
    """(count, 1, 8, 8) scikit-learn digits, values 0..16, as the bundled digits-cnn takes them."""
    return load_digits().images[:count, None].astype(np.float32)


def pixels_input(pixels: np.ndarray) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("pixels", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels)
    return tensor


def http_infer(base_url: str, model: str, pixels: np.ndarray, **kwargs: Any) -> httpx.Response:
    body = {
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": list(pixels.shape), "data": pixels.ravel().tolist()}]
    }
    return httpx.post(f"{base_url}/v2/models/{model}/infer", json=body, timeout=30, **kwargs)


def http_error(response: httpx.Response) -> str:
    message = response.json()["error"]
    assert isinstance(message, str)
    return message
