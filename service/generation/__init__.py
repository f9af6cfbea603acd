"""Text generation on a KV-cache decoder graph (knows no HTTP, no torch); see docs/generation.md."""

from service.generation.engine import GenerationEngine
from service.generation.errors import InvalidGenerationParameter
from service.generation.observer import EngineStatistics, GenerationObserver, StepReport
from service.generation.params import SamplingParams
from service.generation.runner import Run, SessionRunner
from service.generation.stream import FinishReason, GenerationResult, GenerationStream
from service.generation.text import TextTokenizer

__all__ = [
    "EngineStatistics",
    "FinishReason",
    "GenerationEngine",
    "GenerationObserver",
    "GenerationResult",
    "GenerationStream",
    "InvalidGenerationParameter",
    "Run",
    "SamplingParams",
    "SessionRunner",
    "StepReport",
    "TextTokenizer",
]
