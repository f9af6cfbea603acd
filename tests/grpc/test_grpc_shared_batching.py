"""HTTP and gRPC requests to one model wait in the same batcher: sent together they run as one batch
(digits-shared8 runs exactly 8 requests per batch, the determinism switch) and get identical answers."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import tritonclient.grpc.aio as aioclient
from grpc_clients import digit_pixels, pixels_input
from grpc_servers import GrpcServer

MODEL = "digits-shared8"


async def _send_both(server: GrpcServer, pixels: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each digit once over HTTP (JSON) and once over gRPC (raw contents), all eight in flight at once."""
    async with (
        aioclient.InferenceServerClient(server.grpc_url) as grpc_client,
        httpx.AsyncClient(base_url=server.http.url, timeout=30) as http_client,
    ):

        async def over_grpc(one: np.ndarray) -> np.ndarray:
            result = await grpc_client.infer(MODEL, [pixels_input(one)])
            output: np.ndarray = result.as_numpy("probabilities")
            return output

        async def over_http(one: np.ndarray) -> np.ndarray:
            tensor = {"name": "pixels", "datatype": "FP32", "shape": list(one.shape), "data": one.ravel().tolist()}
            response = await http_client.post(f"/v2/models/{MODEL}/infer", json={"inputs": [tensor]})
            response.raise_for_status()
            return np.array(response.json()["outputs"][0]["data"], np.float32).reshape(one.shape[0], -1)

        rows = [pixels[i : i + 1] for i in range(len(pixels))]
        answers = await asyncio.gather(*(over_grpc(r) for r in rows), *(over_http(r) for r in rows))
    return list(answers[: len(rows)]), list(answers[len(rows) :])


def test_http_and_grpc_requests_share_batches_and_answers(server: GrpcServer) -> None:
    grpc_answers, http_answers = asyncio.run(_send_both(server, digit_pixels(4)))
    stats = server.http.statistics(MODEL)
    executed = {b["batch_size"]: b["compute_infer"]["count"] for b in stats["batch_stats"]}
    assert executed == {8: 1}, "four HTTP and four gRPC requests ran as one batch of 8"
    assert (stats["execution_count"], stats["inference_count"]) == (1, 8)
    for over_grpc, over_http in zip(grpc_answers, http_answers, strict=True):
        np.testing.assert_array_equal(over_grpc, over_http)
    assert [int(a.argmax()) for a in grpc_answers] == [0, 1, 2, 3]
    metric = server.http.metric
    assert metric("nnserve_requests_total", model=MODEL, protocol="grpc", code="200") == 4
    assert metric("nnserve_requests_total", model=MODEL, protocol="http", code="200") == 4
