"""text-lstm: token embedding, a bidirectional LSTM, masked mean+max pooling and a linear classifier.

The model is served with `padding: max_length`: a bidirectional LSTM reads the padding too (backwards
it starts there), so fixed-length padding keeps each message's answer independent of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LSTMConfig:
    vocab_size: int
    pad_token_id: int
    embed_dim: int = 64
    hidden: int = 64
    layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    n_classes: int = 2


class TextLSTM(nn.Module):
    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=config.pad_token_id)
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        features = config.hidden * (2 if config.bidirectional else 1)
        self.classifier = nn.Linear(2 * features, config.n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embed(input_ids))  # (B, T, E)
        h, _ = self.lstm(x)  # (B, T, F), F = hidden * directions
        mask = attention_mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        mean = (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (B, F)
        # LSTM outputs lie in (-1, 1), so -1 marks padding without -inf (which would NaN an empty text).
        peak = h.masked_fill(mask == 0, -1.0).amax(dim=1)  # (B, F)
        pooled = self.dropout(torch.cat([mean, peak], dim=-1))  # (B, 2F)
        return self.classifier(pooled)  # (B, n_classes) logits
