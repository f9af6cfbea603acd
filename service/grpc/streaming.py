"""Text generation over gRPC, as Triton serves LLMs (its "decoupled" models): `ModelStreamInfer` answers
one generation request with one response per new piece of text, the last marked with the response
parameter `triton_final_response: true`.

A generation request names the model and has the input `text_input` (BYTES, one element), as Triton's
vLLM and TensorRT-LLM models take it; the sampling parameters (`max_tokens`, `temperature`, `top_k`,
`top_p`, `seed`, `stop`) come as inputs of one element or as request parameters, and the input `stream`
(BOOL, default true on the stream, false on ModelInfer) asks for pieces or for the whole text at once.
The engine and its checks are the ones `/generate_stream` uses (service/api/generate.py).

Other requests on the stream are plain inferences, one response each (as Triton streams a model that
is not decoupled). Requests on one stream run concurrently; a failed one gets `error_message` and the
stream goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import orjson
from google.protobuf.message import Message

from service.api.deps import parse_version
from service.api.generate import wire_errors
from service.batching import BatcherError
from service.errors import InvalidInput, ServiceError, message_for
from service.generation import GenerationResult
from service.grpc import codec
from service.grpc.calls import Context, DataPlane, parse_message
from service.grpc.generated import grpc_service_pb2 as pb
from service.middleware import RequestInfo
from service.protocol.generate import Generation, details_of, parse_generate_request
from service.protocol.limits import check_text_length
from service.protocol.tensors import from_binary, to_binary

log = logging.getLogger(__name__)

TEXT_INPUT = "text_input"
TEXT_OUTPUT = "text_output"
STREAM_INPUT = "stream"
SAMPLING = ("max_tokens", "temperature", "top_k", "top_p", "seed", "stop")
FINAL = "triton_final_response"
EMPTY_FINAL = "triton_enable_empty_final_response"

Infer = Callable[[pb.ModelInferRequest, RequestInfo, Context], Awaitable[Message]]
Send = Callable[[pb.ModelStreamInferResponse], None]


class StreamInfer:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def wants_generation(self, request: pb.ModelInferRequest) -> bool:
        """A request with `text_input` to a text-generation model (one that does not take such an input)."""
        if not any(tensor.name == TEXT_INPUT for tensor in request.inputs):
            return False
        try:
            model = self.plane.repository.lookup(request.model_name, _version(request))
        except ServiceError:
            return False  # the plain inference path reports it
        return model.config.generation is not None and all(spec.name != TEXT_INPUT for spec in model.inputs)

    async def generate_once(self, request: pb.ModelInferRequest, info: RequestInfo) -> pb.ModelInferResponse:
        """ModelInfer on a generation request: the whole text in one response."""
        responses: list[pb.ModelInferResponse] = []
        await self._generate(request, info, lambda r: responses.append(r.infer_response), streaming=False)
        return responses[-1]

    async def serve(
        self, requests: AsyncIterator[bytes], info: RequestInfo, context: Context, infer: Infer
    ) -> AsyncIterator[Message]:
        """The bidirectional stream: every request read is served concurrently, responses sent as ready."""
        queue: asyncio.Queue[pb.ModelStreamInferResponse | None] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()

        async def one(raw: bytes) -> None:
            request_id = ""
            try:
                request = parse_message(pb.ModelInferRequest, raw)
                request_id = request.id
                if self.wants_generation(request):
                    await self._generate(request, info, queue.put_nowait, streaming=True)
                else:
                    response = await infer(request, info, context)
                    assert isinstance(response, pb.ModelInferResponse)
                    queue.put_nowait(pb.ModelStreamInferResponse(infer_response=response))
            except (ServiceError, BatcherError) as exc:
                queue.put_nowait(_error(message_for(exc), request_id))
            except Exception:
                log.exception("unhandled_error", extra={"path": "ModelStreamInfer"})
                queue.put_nowait(_error("internal server error (see the server log)", request_id))

        async def read() -> None:
            async for raw in requests:
                task = asyncio.create_task(one(raw))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.wait(set(tasks))
            queue.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await queue.get()) is not None:
                yield item
            await reader
        finally:
            for task in [reader, *tasks]:
                task.cancel()

    async def _generate(self, request: pb.ModelInferRequest, info: RequestInfo, send: Send, *, streaming: bool) -> None:
        generation, streaming = self._parse(request, streaming)
        plane = self.plane
        held = plane.engines.lease(plane.repository, request.model_name, _version(request), plane.metrics)
        info.model, info.version = held.model.name, str(held.model.version)
        answer = _Answer(held.model.name, str(held.model.version), generation, request)
        try:
            with wire_errors():
                stream = held.engine.submit(generation.text_input, generation.params)
            if not streaming:
                send(answer.whole(await _collect(stream)))
                return
            try:
                async for delta in stream:
                    send(answer.piece(delta))
            except asyncio.CancelledError:
                stream.cancel()
                raise
            assert stream.result is not None, "a stream that ended without error has a result"
            send(answer.last(stream.result))
        finally:
            held.release()

    def _parse(self, request: pb.ModelInferRequest, streaming: bool) -> tuple[Generation, bool]:
        """The generation request, checked by the `/generate` parser, and whether to stream it."""
        fields = _input_fields(request)
        parameters = codec.parameter_values(request.parameters)
        for name in (*SAMPLING, STREAM_INPUT):
            if name in parameters:
                if name in fields:
                    raise InvalidInput(f"{name}: given as an input and as a parameter; send it once")
                fields[name] = parameters[name]
        stream = fields.pop(STREAM_INPUT, streaming)
        if not isinstance(stream, bool):
            raise InvalidInput(f"{STREAM_INPUT}: must be true or false, got {stream!r}")
        if TEXT_INPUT not in fields:
            raise InvalidInput(f"inputs: missing {TEXT_INPUT!r} (BYTES, one element)")
        check_text_length(fields[TEXT_INPUT], TEXT_INPUT, self.plane.settings.max_text_chars)
        return parse_generate_request(orjson.dumps(fields), streaming=False), stream


def _version(request: pb.ModelInferRequest) -> int | None:
    return parse_version(request.model_version or None)


def _input_fields(request: pb.ModelInferRequest) -> dict[str, Any]:
    """Each input's value: one element (a list for `stop`), decoded as ModelInfer decodes inputs."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} inputs")
    known = (TEXT_INPUT, STREAM_INPUT, *SAMPLING)
    fields: dict[str, Any] = {}
    for i, tensor in enumerate(request.inputs):
        where = f"inputs[{i}] {tensor.name!r}"
        if tensor.name not in known:
            raise InvalidInput(f"{where}: a generation request takes the inputs {list(known)}")
        if tensor.name in fields:
            raise InvalidInput(f"{where}: given twice")
        shape = list(tensor.shape)
        array = (
            from_binary(raw[i], tensor.datatype, shape, where, "raw_input_contents size")
            if raw
            else codec.typed_contents(tensor, shape, where)
        )
        values = [v.item() if isinstance(v, np.generic) else v for v in array.reshape(-1)]
        if tensor.name == "stop":
            fields[tensor.name] = values
        elif len(values) != 1:
            raise InvalidInput(f"{where}: expected one element, got {len(values)} (shape {shape})")
        else:
            fields[tensor.name] = values[0]
    return fields


async def _collect(stream: Any) -> GenerationResult:
    try:
        result: GenerationResult = await stream.collect()
    except asyncio.CancelledError:
        stream.cancel()
        raise
    return result


class _Answer:
    """The responses to one generation request: pieces, then the last one with the details."""

    def __init__(self, model: str, version: str, generation: Generation, request: pb.ModelInferRequest) -> None:
        self.model = model
        self.version = version
        self.id = request.id
        self.details = generation.details
        empty = request.parameters.get(EMPTY_FINAL)
        self.empty_final = empty is not None and empty.bool_param

    def _response(self, text: str | None, final: bool) -> pb.ModelInferResponse:
        response = pb.ModelInferResponse(model_name=self.model, model_version=self.version, id=self.id)
        if text is not None:
            response.outputs.add(name=TEXT_OUTPUT, datatype="BYTES", shape=[1])
            response.raw_output_contents.append(to_binary(np.array([text], dtype=object), "BYTES"))
        response.parameters[FINAL].bool_param = final
        return response

    def piece(self, text: str) -> pb.ModelStreamInferResponse:
        return pb.ModelStreamInferResponse(infer_response=self._response(text, final=False))

    def last(self, result: GenerationResult) -> pb.ModelStreamInferResponse:
        """Empty text (joined, the pieces are the whole text), or no output at all when the client asked
        for an empty final response; the details as response parameters."""
        response = self._response(None if self.empty_final else "", final=True)
        self._add_details(response, result)
        return pb.ModelStreamInferResponse(infer_response=response)

    def whole(self, result: GenerationResult) -> pb.ModelStreamInferResponse:
        response = self._response(result.text, final=True)
        self._add_details(response, result)
        return pb.ModelStreamInferResponse(infer_response=response)

    def _add_details(self, response: pb.ModelInferResponse, result: GenerationResult) -> None:
        if not self.details:
            return
        for key, value in details_of(result).items():
            if isinstance(value, str):
                response.parameters[key].string_param = value
            elif isinstance(value, int):
                response.parameters[key].int64_param = value
            elif isinstance(value, float):
                response.parameters[key].double_param = value


def _error(message: str, request_id: str) -> pb.ModelStreamInferResponse:
    return pb.ModelStreamInferResponse(error_message=message, infer_response=pb.ModelInferResponse(id=request_id))
