"""The RPCs of Triton's `inference.GRPCInferenceService`, each a few lines over the shared data plane.

Same answers as the HTTP routes (service/api/v2.py, stats.py, repository.py): the same views, lookups,
leases, batchers and errors. Shared memory, trace and log settings are not offered (UNIMPLEMENTED, as
for any RPC a server does not register), as over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
from google.protobuf.message import Message

from service.access import Role
from service.api.deps import lease, parse_version
from service.api.infer import class_labels, finite_inputs, parameter_timeout_s
from service.api.metrics import served_versions
from service.api.stats import model_statistics_view
from service.errors import ModelNotReady
from service.grpc import codec
from service.grpc.calls import Calls, Context, DataPlane
from service.grpc.generated import grpc_service_pb2 as pb
from service.grpc.streaming import StreamInfer
from service.middleware import RequestInfo
from service.protocol.views import model_config_view, model_metadata_view, server_metadata_view
from service.repository.upload import deploy, read_load_parameters

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


class InferenceService:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.streams = StreamInfer(plane)

    def handler(self) -> grpc.GenericRpcHandler:
        calls = Calls(self.plane, SERVICE)
        infer, admin = Role.INFERENCE, Role.ADMIN
        methods = {
            "ServerLive": calls.unary("ServerLive", pb.ServerLiveRequest, self.server_live, None),
            "ServerReady": calls.unary("ServerReady", pb.ServerReadyRequest, self.server_ready, None),
            "ServerMetadata": calls.unary("ServerMetadata", pb.ServerMetadataRequest, self.server_metadata, None),
            "ModelReady": calls.unary("ModelReady", pb.ModelReadyRequest, self.model_ready, infer),
            "ModelMetadata": calls.unary("ModelMetadata", pb.ModelMetadataRequest, self.model_metadata, infer),
            "ModelConfig": calls.unary("ModelConfig", pb.ModelConfigRequest, self.model_config, infer),
            "ModelInfer": calls.unary("ModelInfer", pb.ModelInferRequest, self.model_infer, infer),
            "ModelStreamInfer": calls.stream("ModelStreamInfer", self.model_stream_infer, infer),
            "ModelStatistics": calls.unary("ModelStatistics", pb.ModelStatisticsRequest, self.statistics, infer),
            "RepositoryIndex": calls.unary("RepositoryIndex", pb.RepositoryIndexRequest, self.index, infer),
            "RepositoryModelLoad": calls.unary("RepositoryModelLoad", pb.RepositoryModelLoadRequest, self.load, admin),
            "RepositoryModelUnload": calls.unary(
                "RepositoryModelUnload", pb.RepositoryModelUnloadRequest, self.unload, admin
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    async def server_live(self, request: pb.ServerLiveRequest, info: RequestInfo, context: Context) -> Message:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: pb.ServerReadyRequest, info: RequestInfo, context: Context) -> Message:
        """As `/v2/health/ready`: false while models load, when one that should serve does not, and from
        the first SIGTERM on."""
        ready = not self.plane.lifecycle.draining and self.plane.repository.readiness().ready
        return pb.ServerReadyResponse(ready=ready)

    async def server_metadata(self, request: pb.ServerMetadataRequest, info: RequestInfo, context: Context) -> Message:
        return codec.server_metadata(server_metadata_view())

    async def model_ready(self, request: pb.ModelReadyRequest, info: RequestInfo, context: Context) -> Message:
        """As over HTTP: ready or not, with an error only for a model or version that does not exist."""
        try:
            model = self.plane.repository.lookup(request.name, parse_version(request.version or None))
        except ModelNotReady:
            return pb.ModelReadyResponse(ready=False)
        info.model, info.version = model.name, str(model.version)
        return pb.ModelReadyResponse(ready=True)

    async def model_metadata(self, request: pb.ModelMetadataRequest, info: RequestInfo, context: Context) -> Message:
        repository = self.plane.repository
        with lease(repository, info, request.name, request.version or None) as model:
            return codec.model_metadata(model_metadata_view(model, repository.entry(model.name).served))

    async def model_config(self, request: pb.ModelConfigRequest, info: RequestInfo, context: Context) -> Message:
        with lease(self.plane.repository, info, request.name, request.version or None) as model:
            return pb.ModelConfigResponse(config=codec.model_config(model_config_view(model)))

    async def model_infer(self, request: pb.ModelInferRequest, info: RequestInfo, context: Context) -> Message:
        """One inference through the model's batcher, shared with HTTP requests to the same model."""
        if self.streams.wants_generation(request):
            return await self.streams.generate_once(request, info)
        settings = self.plane.settings
        with lease(self.plane.repository, info, request.model_name, request.model_version or None) as model:
            decoded = codec.decode_infer_request(request, model, finite=finite_inputs(model, settings))
            deadline = request_deadline(info, context.time_remaining(), request.parameters)
            results = await model.infer(decoded.inputs, deadline=deadline)
        return codec.encode_infer_response(model, decoded, results, class_labels(model))

    def model_stream_infer(
        self, requests: AsyncIterator[bytes], info: RequestInfo, context: Context
    ) -> AsyncIterator[Message]:
        return self.streams.serve(requests, info, context, self.model_infer)

    async def statistics(self, request: pb.ModelStatisticsRequest, info: RequestInfo, context: Context) -> Message:
        plane = self.plane
        if not request.name:
            body = plane.statistics.to_json(served=served_versions(plane.repository).keys())
        else:
            version = parse_version(request.version or None)
            body = model_statistics_view(plane.statistics, plane.repository, request.name, version)
        return codec.model_statistics(body)

    async def index(self, request: pb.RepositoryIndexRequest, info: RequestInfo, context: Context) -> Message:
        return codec.repository_index(self.plane.repository.index(ready_only=request.ready))

    async def load(self, request: pb.RepositoryModelLoadRequest, info: RequestInfo, context: Context) -> Message:
        """(Re)load from disk, as POST /v2/repository/models/{name}/load; with Triton's `config` (string_param)
        and `file:<version>/<name>` (bytes_param) parameters, deploy them first, under HTTP's rules
        (service.repository.upload)."""
        repository, name = self.plane.repository, request.model_name
        if request.parameters:
            parameters = codec.parameter_values(request.parameters)
            await deploy(repository, name, read_load_parameters(name, parameters, self.plane.settings))
        else:
            await repository.load(name)
        return pb.RepositoryModelLoadResponse()

    async def unload(self, request: pb.RepositoryModelUnloadRequest, info: RequestInfo, context: Context) -> Message:
        await self.plane.repository.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()


def request_deadline(info: RequestInfo, remaining_s: float | None, parameters: Mapping[str, Any]) -> float | None:
    """The request's deadline (time.monotonic()): the gRPC deadline or the v2 `timeout` parameter, whichever
    comes first; None = the model's default."""
    deadlines = [] if remaining_s is None else [time.monotonic() + remaining_s]
    if "timeout" in parameters:
        timeout_s = parameter_timeout_s(codec.parameter_values(parameters)["timeout"])
        if timeout_s is not None:
            deadlines.append(info.received_at + timeout_s)
    return min(deadlines) if deadlines else None
