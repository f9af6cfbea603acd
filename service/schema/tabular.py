"""The tabular transform: how a row of named values becomes the model's feature vector.

`fit` learns it on the training split and writes it into `config.yaml`; the server applies the part
that ONNX cannot hold (names to positions, strings to one-hot codes) and the exported graph holds the
rest (imputation, missing indicators, standardisation), so no server code can drift from training.

Feature layout of the model input (FP32 `[batch, n_features]`), column by column in `columns` order:
- numeric: one value, the raw number, NaN when missing (the graph imputes and standardises it);
- categorical: `len(categories) + 1` one-hot slots, the last one for a value unseen in training or missing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TabularColumn(_Strict):
    name: str = Field(min_length=1)
    kind: Literal["numeric", "categorical"]
    categories: list[str] = Field(
        default_factory=list, description="categorical only: the training values, in one-hot order."
    )

    @model_validator(mode="after")
    def _categories_match_kind(self) -> TabularColumn:
        if self.kind == "numeric" and self.categories:
            raise ValueError(f"column {self.name!r}: a numeric column has no categories")
        if self.kind == "categorical" and not self.categories:
            raise ValueError(f"column {self.name!r}: a categorical column needs its categories")
        return self

    @property
    def width(self) -> int:
        """Slots this column takes in the feature vector."""
        return 1 if self.kind == "numeric" else len(self.categories) + 1


class TabularPreprocessing(_Strict):
    columns: list[TabularColumn] = Field(min_length=1, description="Feature columns, in array order.")
    input: str = Field("features", description="Model input receiving FP32 [batch, n_features].")

    @model_validator(mode="after")
    def _names_unique(self) -> TabularPreprocessing:
        names = [c.name for c in self.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate column name(s): {', '.join(duplicated)}")
        return self

    @property
    def n_features(self) -> int:
        return sum(c.width for c in self.columns)
