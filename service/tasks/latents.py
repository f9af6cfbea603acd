"""The latent recipe: how a seed becomes `z`, defined once for the server, the trainer and any client.

    rng = numpy.random.default_rng(seed)                     # PCG64, seeded with the integer seed
    z = rng.standard_normal((count, z_dim))                  # float64, row-major: row i is image i
    z = z.astype(numpy.float32) * numpy.float32(temperature)

So `{"seed": 3, "count": 4}` gives the same first image as `{"seed": 3, "count": 1}`, and a v2 client
reproduces any served image by sending this `z` (and the label's index) to `/v2/models/NAME/infer`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

MAX_SEED = 2**53 - 1
"""Seeds are 0..2**53-1: every one survives a round trip through a JavaScript number."""
TEMPERATURE_RANGE = (0.0, 2.0)
"""`temperature` scales z: 1 = the training distribution; below 1 trades variety for typical, cleaner
samples (the truncation trick's effect); 0 gives each class's "average" image; up to 2 for wilder ones."""


def draw_latents(seed: int, count: int, z_dim: int, temperature: float = 1.0) -> NDArray[np.float32]:
    """(count, z_dim) float32 latents for `seed`, by the recipe in the module docstring."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, z_dim)).astype(np.float32) * np.float32(temperature)
