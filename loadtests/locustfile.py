"""Locust scenarios for nnserve: one user class per workload.

Pick workloads by class name (`locust ... ImageUploadUser TextClassificationUser`) or by tag
(`--tags image`, `--tags generation`). Each class's weight, the wait between tasks and the model names
come from environment variables read when locust imports this file:

    NNSERVE_LOADTEST_WAIT_MIN / _WAIT_MAX   seconds between a user's requests (default 0.05 / 0.25)
    NNSERVE_LOADTEST_WEIGHT_<CLASS>         e.g. NNSERVE_LOADTEST_WEIGHT_IMAGEUPLOADUSER=3 (default 1)
    NNSERVE_LOADTEST_IMAGE_MODEL            default digits-cnn
    NNSERVE_LOADTEST_TEXT_MODELS            comma-separated, default text-transformer,text-lstm
    NNSERVE_LOADTEST_ANOMALY_MODEL          default digits-ae
    NNSERVE_LOADTEST_GENERATION_MODEL       default tiny-gpt
    NNSERVE_LOADTEST_MAX_TOKENS             tokens per generation request (default 16)

Streaming generation reports time to first token as its own row (request type `TTFT`).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

import orjson
from locust import FastHttpUser, HttpUser, between, tag, task

from loadtests import inputs
from loadtests.streaming import TTFT, sse_data

ENV_PREFIX = "NNSERVE_LOADTEST_"


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _weight(cls_name: str) -> int:
    return int(_env("WEIGHT_" + cls_name.upper(), "1"))


def _wait() -> Any:
    return between(float(_env("WAIT_MIN", "0.05")), float(_env("WAIT_MAX", "0.25")))


IMAGE_MODEL = _env("IMAGE_MODEL", "digits-cnn")
TEXT_MODELS = [m for m in _env("TEXT_MODELS", "text-transformer,text-lstm").split(",") if m]
ANOMALY_MODEL = _env("ANOMALY_MODEL", "digits-ae")
GENERATION_MODEL = _env("GENERATION_MODEL", "tiny-gpt")
MAX_TOKENS = int(_env("MAX_TOKENS", "16"))


def predict_path(model: str) -> str:
    return f"/v1/models/{model}:predict"


def infer_path(model: str) -> str:
    return f"/v2/models/{model}/infer"


def multipart(field: str, filename: str, content: bytes, content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one file, and its Content-Type (FastHttpUser has no `files=`)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def check_predictions(response: Any, expected: int) -> None:
    """Fail the request unless the body is a :predict answer with one prediction per instance."""
    try:
        predictions = orjson.loads(response.content)["predictions"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        response.failure(f"no 'predictions' in the answer: {response.content[:200]!r}")
        return
    if len(predictions) != expected:
        response.failure(f"expected {expected} predictions, got {len(predictions)}")


class ImageUploadUser(FastHttpUser):
    """Image classification by multipart file upload, the way a browser form or curl -F sends it."""

    weight = _weight("ImageUploadUser")
    wait_time = _wait()

    @tag("image", "upload")
    @task
    def upload_digit(self) -> None:
        body, content_type = multipart("file", "digit.png", random.choice(inputs.digit_pngs()), "image/png")
        path = predict_path(IMAGE_MODEL)
        with self.client.post(
            path,
            data=body,
            headers={"Content-Type": content_type},
            name=f"{path} [upload]",
            catch_response=True,
        ) as response:
            check_predictions(response, 1)


class ImageTensorUser(FastHttpUser):
    """Image classification through Open Inference Protocol v2 JSON tensors (raw 0..16 pixel values)."""

    weight = _weight("ImageTensorUser")
    wait_time = _wait()

    @tag("image", "v2")
    @task
    def infer_digits(self) -> None:
        images = inputs.digit_images()
        count = random.choice((1, 1, 1, 4))
        start = random.randrange(len(images) - count)
        batch = images[start : start + count]
        body = {
            "inputs": [
                {
                    "name": "pixels",
                    "datatype": "FP32",
                    "shape": [count, 1, 8, 8],
                    "data": batch.ravel().tolist(),
                }
            ]
        }
        with self.client.post(infer_path(IMAGE_MODEL), data=orjson.dumps(body), catch_response=True) as response:
            try:
                outputs = orjson.loads(response.content)["outputs"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                response.failure(f"no 'outputs' in the answer: {response.content[:200]!r}")
                return
            if not outputs or outputs[0]["shape"][0] != count:
                response.failure(f"expected outputs for {count} images, got {outputs!r:.200}")


class TextClassificationUser(FastHttpUser):
    """Spam/ham classification of SMS messages with each text model, one to four messages per request."""

    weight = _weight("TextClassificationUser")
    wait_time = _wait()

    @tag("text")
    @task
    def classify_sms(self) -> None:
        model = random.choice(TEXT_MODELS)
        texts = random.sample(inputs.sms_texts(), random.choice((1, 1, 2, 4)))
        with self.client.post(
            predict_path(model), data=orjson.dumps({"instances": texts}), catch_response=True
        ) as response:
            check_predictions(response, len(texts))


class AnomalyUser(FastHttpUser):
    """Anomaly detection on uploaded pictures: mostly genuine digits, sometimes random noise."""

    weight = _weight("AnomalyUser")
    wait_time = _wait()

    @tag("anomaly")
    @task
    def score_picture(self) -> None:
        pool = inputs.noise_pngs() if random.random() < 0.2 else inputs.digit_pngs()
        instances = [{"b64": inputs.b64(random.choice(pool))}]
        with self.client.post(
            predict_path(ANOMALY_MODEL), data=orjson.dumps({"instances": instances}), catch_response=True
        ) as response:
            check_predictions(response, 1)


def _generate_request() -> dict[str, Any]:
    return {
        "text_input": random.choice(inputs.prompts()),
        "max_tokens": MAX_TOKENS,
        "temperature": 0.8,
        "seed": random.randrange(1 << 31),
    }


class GenerateUser(FastHttpUser):
    """Non-streaming text generation: the v2 generate extension and the OpenAI completions route."""

    weight = _weight("GenerateUser")
    wait_time = _wait()

    @tag("generation")
    @task(3)
    def generate(self) -> None:
        path = f"/v2/models/{GENERATION_MODEL}/generate"
        with self.client.post(path, data=orjson.dumps(_generate_request()), catch_response=True) as response:
            try:
                orjson.loads(response.content)["text_output"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                response.failure(f"no 'text_output' in the answer: {response.content[:200]!r}")

    @tag("generation", "openai")
    @task(1)
    def complete(self) -> None:
        body = {
            "model": GENERATION_MODEL,
            "prompt": random.choice(inputs.prompts()),
            "max_tokens": MAX_TOKENS,
        }
        headers = {"Authorization": "Bearer loadtest"}
        with self.client.post(
            "/v1/completions", data=orjson.dumps(body), headers=headers, catch_response=True
        ) as response:
            try:
                orjson.loads(response.content)["choices"][0]["text"]
            except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
                response.failure(f"no completion in the answer: {response.content[:200]!r}")


class GenerateStreamUser(HttpUser):
    """Streaming generation over server-sent events; reports time to first token as its own metric.

    An HttpUser, not a FastHttpUser: requests hands over each chunk as it arrives, whereas the fast
    client's reads block until a buffer fills, which would hide the first token's arrival time.
    """

    weight = _weight("GenerateStreamUser")
    wait_time = _wait()

    @tag("generation", "stream")
    @task
    def generate_stream(self) -> None:
        path = f"/v2/models/{GENERATION_MODEL}/generate_stream"
        started = time.perf_counter()
        with self.client.post(
            path,
            data=orjson.dumps(_generate_request()),
            headers={"Accept": "text/event-stream", "Accept-Encoding": "identity"},
            stream=True,
            catch_response=True,
        ) as response:
            first_token_ms: float | None = None
            events = 0
            try:
                for data in sse_data(response.iter_content(chunk_size=None)):
                    event = orjson.loads(data)
                    if "error" in event:
                        response.failure(f"stream error: {event['error']}")
                        return
                    events += 1
                    if first_token_ms is None and event.get("text_output"):
                        first_token_ms = (time.perf_counter() - started) * 1000
            except (orjson.JSONDecodeError, OSError, ValueError) as exc:
                response.failure(f"broken stream: {exc}")
                return
            response.request_meta["response_time"] = (time.perf_counter() - started) * 1000
            if first_token_ms is None:
                response.failure(f"stream ended after {events} events without any text")
                return
            self.environment.events.request.fire(
                request_type=TTFT,
                name=path,
                response_time=first_token_ms,
                response_length=0,
                exception=None,
                context={},
            )
