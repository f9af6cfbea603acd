"""A small GPT-style decoder (nanoGPT's shape): token + position embeddings, pre-norm blocks, causal
self-attention, tied output head.

Two forward paths share every weight:
- `forward(idx)`: the whole context at once, `is_causal` attention; used for training and as the
  no-cache reference in the export parity check.
- `forward_with_cache(...)`: new tokens attend to cached keys/values plus themselves under an explicit
  mask, the path exported to ONNX for incremental decoding (see `KVCacheDecoder`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_MAX_GEMM_COLUMNS = 16


@dataclass
class GPTConfig:
    vocab_size: int
    context_length: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    dropout: float = 0.1

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def attention_bias(attention_mask: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Additive mask (B, 1, T, S) for T new queries over S = past + T keys.

    Query i (absolute key index past+i) sees key j when j <= past+i and the key is a real token
    (attention_mask 1). It always sees itself, so a padding query never has an all-masked row: that
    would give NaN, and NaN times a zero weight still poisons real rows in the next layer.
    """
    total = attention_mask.shape[1]  # S
    past = total - new_tokens
    key_index = torch.arange(total, device=attention_mask.device)  # (S,)
    query_index = torch.arange(new_tokens, device=attention_mask.device).unsqueeze(1) + past  # (T, 1)
    causal = key_index.unsqueeze(0) <= query_index  # (T, S)
    real = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
    allowed = (causal & real) | (key_index.unsqueeze(0) == query_index)  # (B, 1, T, S)
    zero = torch.zeros((), dtype=torch.float32, device=attention_mask.device)
    return torch.where(allowed, zero, torch.tensor(float("-inf"), device=attention_mask.device))


def batch_invariant_attention(
    q: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """softmax(q k^T / sqrt(D) + bias) v, written so ONNX Runtime's CPU kernels give bit-identical rows
    whatever the batch and however much left padding a row carries.

    That property is what lets the serving engine batch sequences of different lengths and still give
    each one exactly the tokens it would get alone. Three choices secure it (MLAS, ORT's CPU GEMM):
    - no Softmax op: its vectorized sum groups terms by SIMD lane, so a shift by padding changes the
      rounding. The normalizer is instead an extra all-ones column of v, summed inside the same GEMM as
      the output; a GEMM accumulates each output along k in order, and padded keys add exact zeros.
    - one spare zero query row, so the GEMM never has M = 1: MLAS's single-row kernel splits k across
      lanes, which again makes results depend on where the zeros sit.
    - v's columns in chunks of at most 16: MLAS then keeps k (the key axis) in one block up to 1024
      keys; with 33 columns it would cut k at 256 and round differently once padding moves a block edge.
    tests/generation checks the property bit for bit on the exported graph.
    """
    T, D = q.shape[2], q.shape[3]
    scores = (q @ key.transpose(-2, -1)) * (1.0 / math.sqrt(D)) + bias  # (B, H, T, S)
    weights = torch.exp(scores - scores.amax(dim=-1, keepdim=True))  # (B, H, T, S); masked keys -> exactly 0
    weights = torch.cat([weights, torch.zeros_like(weights[..., :1, :])], dim=2)  # (B, H, T+1, S)
    value = torch.cat([value, torch.ones_like(value[..., :1])], dim=-1)  # (B, H, S, D+1)
    chunks = value.tensor_split(math.ceil((D + 1) / _MAX_GEMM_COLUMNS), dim=-1)  # each (B, H, S, <=16)
    summed = torch.cat([weights @ chunk for chunk in chunks], dim=-1)[:, :, :T]  # (B, H, T, D+1)
    return summed[..., :D] / summed[..., D:]  # (B, H, T, D)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        assert config.d_model % config.n_heads == 0, "d_model must be a multiple of n_heads"
        self.n_heads = config.n_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        shape = (B, T, self.n_heads, self.head_dim)
        return tuple(t.view(shape).transpose(1, 2) for t in (q, k, v))  # type: ignore[return-value]  # 3 x (B, H, T, D)

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        B, H, T, D = y.shape
        y = y.transpose(1, 2).contiguous().view(B, T, H * D)  # (B, T, C)
        return self.resid_dropout(self.proj(y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(x)  # (B, H, T, D)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)  # (B, H, T, D)
        return self._merge(y)

    def forward_with_cache(
        self, x: torch.Tensor, past_key: torch.Tensor, past_value: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self._heads(x)  # (B, H, T, D)
        key = torch.cat([past_key, k], dim=2)  # (B, H, P+T, D)
        value = torch.cat([past_value, v], dim=2)  # (B, H, P+T, D)
        y = batch_invariant_attention(q, key, value, bias)  # (B, H, T, D)
        return self._merge(y), key, value


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, 4 * config.d_model)
        self.proj = nn.Linear(4 * config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))  # (B, T, C)


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def forward_with_cache(
        self, x: torch.Tensor, past_key: torch.Tensor, past_value: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        attended, key, value = self.attn.forward_with_cache(self.ln_1(x), past_key, past_value, bias)
        x = x + attended
        return x + self.mlp(self.ln_2(x)), key, value


class TinyGPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.context_length, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.head.weight = self.token_embedding.weight  # tied: fewer parameters, better small-data perplexity
        self.apply(self._init_weights)
        # GPT-2's scaled init of residual projections keeps the residual stream's variance flat in depth.
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def parameter_count(self) -> int:
        """Unique parameters (the tied head is counted once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        assert self.config.context_length >= T, (
            f"{T} tokens exceed the context of {self.config.context_length}"
        )
        positions = torch.arange(T, device=idx.device)  # (T,)
        x = self.dropout(self.token_embedding(idx) + self.position_embedding(positions))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))  # (B, T, V)

    def forward_with_cache(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        past: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """input_ids/position_ids (B, T); attention_mask (B, P+T); past per layer 2 x (B, H, P, D)."""
        x = self.token_embedding(input_ids) + self.position_embedding(position_ids)  # (B, T, C)
        bias = attention_bias(attention_mask, input_ids.shape[1])  # (B, 1, T, P+T)
        present = []
        for block, (past_key, past_value) in zip(self.blocks, past, strict=True):
            x, key, value = block.forward_with_cache(
                x, past_key, past_value, bias
            )  # (B, T, C), 2 x (B, H, P+T, D)
            present.append((key, value))
        return self.head(self.ln_f(x)), present  # (B, T, V)


class KVCacheDecoder(nn.Module):
    """The exported signature: flat tensors in, flat tensors out, in the order the ONNX names list."""

    def __init__(self, model: TinyGPT) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *past_flat: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, present = self.model.forward_with_cache(input_ids, position_ids, attention_mask, past)
        return (logits, *(t for pair in present for t in pair))
