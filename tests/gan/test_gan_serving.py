"""Task `image-generation` on a real server: reproducible PNGs, agreement with v2 infer, named errors."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import numpy as np
import pytest
from gan_testkit import MAX_GENERATED
from PIL import Image
from testkit.server import Server

from service.tasks.latents import MAX_SEED, draw_latents

PREDICT = "/v1/models/digits-gan:predict"


def generate(http: httpx.Client, *instances: dict[str, Any], **parameters: Any) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"instances": list(instances)}
    if parameters:
        body["parameters"] = parameters
    response = http.post(PREDICT, json=body)
    assert response.status_code == 200, response.text
    predictions: list[dict[str, Any]] = response.json()["predictions"]
    return predictions


def png_bytes(answer: dict[str, Any], index: int = 0) -> bytes:
    return base64.b64decode(answer["images"][index]["b64"])


def png_pixels(raw: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(raw)))


def infer_v2(http: httpx.Client, z: np.ndarray, labels: list[int]) -> np.ndarray:
    body = {
        "inputs": [
            {"name": "z", "datatype": "FP32", "shape": list(z.shape), "data": z.ravel().tolist()},
            {"name": "label", "datatype": "INT64", "shape": [len(labels)], "data": labels},
        ]
    }
    response = http.post("/v2/models/digits-gan/infer", json=body)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


def test_generate_same_seed_gives_identical_png_bytes(server: Server) -> None:
    with server.client() as http:
        first = generate(http, {"label": "7", "seed": 3})
        second = generate(http, {"label": "7", "seed": 3}, {"label": "2", "seed": 5})
    assert first[0]["seed"] == 3 and first[0]["label"] == "7"
    assert png_bytes(first[0]) == png_bytes(second[0])
    assert png_pixels(png_bytes(first[0])).shape == (64, 64)


def test_generate_different_seeds_give_different_images(server: Server) -> None:
    with server.client() as http:
        answers = generate(http, *({"label": "4", "seed": s} for s in range(4)))
    pictures = {png_bytes(a) for a in answers}
    assert len(pictures) == 4


def test_generate_count_rows_follow_the_seed_recipe(server: Server) -> None:
    with server.client() as http:
        (batch,) = generate(http, {"label": "1", "seed": 11, "count": 4})
        (single,) = generate(http, {"label": "1", "seed": 11})
    assert batch["count"] == 4 and len(batch["images"]) == 4
    assert png_bytes(batch, 0) == png_bytes(single, 0)
    assert len({png_bytes(batch, i) for i in range(4)}) == 4


def test_generate_predict_and_v2_infer_agree_on_the_same_seed(server: Server) -> None:
    with server.client() as http:
        (answer,) = generate(http, {"label": "9", "seed": 42, "count": 3}, raw=True)
        served = np.asarray([image["pixels"] for image in answer["images"]], dtype=np.float32)
        direct = infer_v2(http, draw_latents(42, 3, 32), [9, 9, 9])
        tensors = http.post(
            "/ui/models/digits-gan/preprocess", json={"instances": [{"label": "9", "seed": 42, "count": 3}]}
        )
    np.testing.assert_allclose(served, direct, atol=1e-5)
    z = next(t for t in tensors.json()["inputs"] if t["name"] == "z")
    np.testing.assert_array_equal(np.asarray(z["data"], dtype=np.float32).reshape(3, 32), draw_latents(42, 3, 32))
    levels = np.clip(np.rint(direct[0, 0].astype(np.float64) * 255.0 / 16.0), 0, 255)
    np.testing.assert_array_equal(png_pixels(png_bytes(answer))[::8, ::8], levels)


def test_generate_without_seed_returns_one_that_reproduces_the_image(server: Server) -> None:
    with server.client() as http:
        (drawn,) = generate(http, {"label": "3"})
        (again,) = generate(http, {"label": "3", "seed": drawn["seed"]})
    assert 0 <= drawn["seed"] <= MAX_SEED
    assert png_bytes(drawn) == png_bytes(again)


def test_generate_scale_and_temperature_parameters_apply(server: Server) -> None:
    with server.client() as http:
        (small,) = generate(http, {"label": "5", "seed": 1}, scale=2)
        answers = generate(http, {"label": "5", "seed": 1}, {"label": "5", "seed": 2}, temperature=0.0)
    assert png_pixels(png_bytes(small)).shape == (16, 16)
    assert png_bytes(answers[0]) == png_bytes(answers[1])  # z = 0 for every seed


def test_generate_goes_through_the_batcher(server: Server) -> None:
    before = server.statistics("digits-gan")["inference_count"]
    with server.client() as http:
        generate(http, {"label": "0", "seed": 0, "count": 5})
    assert server.statistics("digits-gan")["inference_count"] == before + 5


@pytest.mark.parametrize(
    ("instance", "parameters", "status", "named"),
    [
        ({"label": "x", "seed": 1}, {}, 400, "instances[0].label"),
        ({"label": 7, "seed": 1}, {}, 400, "instances[0].label"),
        ({"seed": 1}, {}, 400, "instances[0].label"),
        ({"label": "7", "seed": -1}, {}, 400, "instances[0].seed"),
        ({"label": "7", "seed": "3"}, {}, 400, "instances[0].seed"),
        ({"label": "7", "seed": True}, {}, 400, "instances[0].seed"),
        ({"label": "7", "seed": MAX_SEED + 1}, {}, 400, "instances[0].seed"),
        ({"label": "7", "count": 0}, {}, 400, "instances[0].count"),
        ({"label": "7", "count": 2.5}, {}, 400, "instances[0].count"),
        ({"label": "7", "count": MAX_GENERATED + 1}, {}, 400, "instances[0].count"),
        ({"label": "7", "colour": "red"}, {}, 400, "colour"),
        ("7", {}, 400, "instances[0]"),
        ({"label": "7"}, {"temperature": 2.5}, 400, "temperature"),
        ({"label": "7"}, {"scale": 0}, 400, "scale"),
        ({"label": "7"}, {"raw": "yes"}, 400, "raw"),
    ],
)
def test_generate_bad_input_is_a_named_client_error(
    server: Server, instance: Any, parameters: dict[str, Any], status: int, named: str
) -> None:
    with server.client() as http:
        response = http.post(PREDICT, json={"instances": [instance], "parameters": parameters})
    assert response.status_code == status, response.text
    assert named in response.json()["error"]


def test_generate_total_count_above_the_cap_is_413(server: Server) -> None:
    half = MAX_GENERATED // 2 + 1
    with server.client() as http:
        response = http.post(
            PREDICT, json={"instances": [{"label": "1", "count": half}, {"label": "2", "count": half}]}
        )
        assert response.status_code == 413, response.text
        assert "max_generated_images" in response.json()["error"]
        assert http.post(PREDICT, json={"instances": [{"label": "1", "count": half}]}).status_code == 200


def test_generation_parameters_on_a_classifier_are_refused_by_name(server: Server) -> None:
    with server.client() as http:
        response = http.post(
            "/v1/models/digits-cnn:predict", json={"instances": [[[[0.0] * 8] * 8]], "parameters": {"raw": True}}
        )
    assert response.status_code == 400, response.text
    assert "parameters.raw" in response.json()["error"]


def test_generated_pngs_are_read_back_by_digits_cnn_as_the_class_asked(server: Server) -> None:
    with server.client() as http:
        (answer,) = generate(http, {"label": "6", "seed": 8, "count": 10})
        instances = [{"b64": image["b64"]} for image in answer["images"]]
        predictions = http.post("/v1/models/digits-cnn:predict", json={"instances": instances}).json()["predictions"]
    assert sum(p["label"] == "6" for p in predictions) >= 8


def test_openapi_generation_example_is_what_the_server_answers(server: Server) -> None:
    with server.client() as http:
        spec = http.get("/openapi.json").json()
        operation = spec["paths"]["/v1/models/{name}:predict"]["post"]
        request = operation["requestBody"]["content"]["application/json"]["examples"]["image_generation"]["value"]
        example = operation["responses"]["200"]["content"]["application/json"]["examples"]["image generation"]
        answer = http.post(PREDICT, json=request)
    assert answer.json() == example["value"]
