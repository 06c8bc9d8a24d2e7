"""Prompt projectors: map audio/visual embeddings to prompt tokens for a decoder."""
from __future__ import annotations

import torch
from torch import nn


class MLPProjector(nn.Module):
    """Linear-ReLU-Dropout-Linear, the projector GAVS uses to lift VGGish features to SAM's width."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TokenProjector(nn.Module):
    """One vector -> ``num_tokens`` tokens of width ``token_dim`` (an MLP then a reshape)."""

    def __init__(self, in_dim: int, num_tokens: int, token_dim: int, hidden_dim: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.num_tokens, self.token_dim = num_tokens, token_dim
        self.mlp = MLPProjector(in_dim, hidden_dim or in_dim, num_tokens * token_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).view(x.shape[0], self.num_tokens, self.token_dim)


class BlockPromptGenerator(nn.Module):
    """Per-block prompts for a frozen ViT: a light MLP per block, then a shared projection to the block width.

    AV2T-SAM adds these to the image tokens of every encoder block so the audio
    (or fused audio-visual) feature conditions the frozen image encoder.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, depth: int):
        super().__init__()
        self.per_block = nn.ModuleList(
            nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU()) for _ in range(depth)
        )
        self.shared = nn.Linear(hidden_dim, out_dim)
        # Start with no effect on the frozen encoder.
        nn.init.zeros_(self.shared.weight)
        nn.init.zeros_(self.shared.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.shared(mlp(x)) for mlp in self.per_block]
