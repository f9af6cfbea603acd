"""The gRPC endpoint: Triton's `inference.GRPCInferenceService`, the standard health service and reflection.

A thin transport over the same data plane as HTTP (repository, batchers, engines, statistics, views), on
the same event loop, so requests of both protocols share each model's batcher. docs/serving.md ("gRPC").
"""
