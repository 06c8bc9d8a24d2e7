"""Bottleneck adapters (Houlsby et al.) and the ways we attach them to frozen backbones.

Adapters start as the identity (zero-initialised up-projection), so inserting
them leaves a pretrained backbone's output unchanged until training moves them.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


class BottleneckAdapter(nn.Module):
    """x + up(act(down(x))): a two-layer bottleneck MLP with a residual connection."""

    def __init__(self, dim: int, bottleneck: int, activation: type[nn.Module] = nn.GELU):
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.act = activation()
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x)))


class AdaptedMLP(nn.Module):
    """A frozen transformer-block MLP followed by an adapter on its output."""

    def __init__(self, mlp: nn.Module, adapter: BottleneckAdapter):
        super().__init__()
        self.mlp = mlp
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.mlp(x))


def adapt_block_mlps(blocks: Iterable[nn.Module], dim: int, bottleneck: int) -> list[BottleneckAdapter]:
    """Wrap ``block.mlp`` of every block (SAM ViT and two-way transformer blocks) with an adapter."""
    adapters = []
    for block in blocks:
        adapter = BottleneckAdapter(dim, bottleneck)
        block.mlp = AdaptedMLP(block.mlp, adapter)
        adapters.append(adapter)
    return adapters


def attach_output_adapter(module: nn.Module, adapter: BottleneckAdapter):
    """Apply ``adapter`` to a module's output (first element when it returns a tuple).

    Used where the projection to adapt is not called as a module of its own, e.g.
    ``nn.MultiheadAttention.out_proj`` inside Mask2Former's masked attention:
    the attention output *is* the output projection's output.
    """

    def hook(_module, _inputs, output):
        if isinstance(output, tuple):
            return (adapter(output[0]),) + tuple(output[1:])
        return adapter(output)

    return module.register_forward_hook(hook)
