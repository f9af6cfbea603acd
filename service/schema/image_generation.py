"""The `image_generation` section of a model config: how a generator graph is driven and displayed.

A generator takes a latent batch `z` (FP32 [-1, z_dim]) and, when conditional, a class index `label`
(INT64 [-1]); it returns images (FP32 [-1, C, H, W]) whose pixel values span `value_range`. The server
draws `z` itself from a seed (service/tasks/image_generation.py documents the exact recipe) and encodes
each image as a PNG scaled `scale` times (nearest neighbour, so every model pixel stays a crisp square).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_SCALE = 32
"""Largest PNG enlargement a config or a request may ask for: 8x8 digits become at most 256x256."""


class ImageGenerationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    z: str = Field("z", description="Input holding the latent vectors, FP32 [-1, z_dim].")
    label: str | None = Field("label", description="Input holding class indices, INT64 [-1]; None = unconditional.")
    image: str = Field("image", description="Output holding the images, FP32 [-1, C, H, W].")
    z_dim: int = Field(gt=0, description="Length of one latent vector.")
    labels: list[str] = Field(
        default_factory=list, description="Class names in index order; empty for an unconditional model."
    )
    value_range: tuple[float, float] = Field(
        (0.0, 1.0), description="Pixel values mapped onto PNG intensities 0..255 (clipped outside)."
    )
    scale: int = Field(8, ge=1, le=MAX_SCALE, description="Default PNG enlargement (nearest neighbour).")

    @model_validator(mode="after")
    def _conditioning_consistent(self) -> ImageGenerationSettings:
        if self.labels and self.label is None:
            raise ValueError("labels are given but `label` (the class input) is None")
        if self.label is not None and not self.labels:
            raise ValueError(f"`label` names input {self.label!r} but `labels` is empty; set label: null")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be distinct")
        low, high = self.value_range
        if not high > low:
            raise ValueError(f"value_range must rise, got {self.value_range}")
        return self
