"""Auxiliary losses of the papers: GAVS's audio-visual triplet alignment and TeSO's latent InfoNCE (Eq. 10)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def triplet_alignment_loss(audio: torch.Tensor, visual: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Cosine-distance triplet loss: audio i is the anchor, visual i the positive, visual i+1 (mod B) the negative.

    Needs at least two samples; with one there is no negative and the loss is 0.
    """
    if audio.shape[0] < 2:
        return audio.sum() * 0.0
    a, v = F.normalize(audio, dim=-1), F.normalize(visual, dim=-1)
    pos = 1.0 - (a * v).sum(-1)
    neg = 1.0 - (a * v.roll(1, dims=0)).sum(-1)
    return F.relu(pos - neg + margin).mean()


def latent_infonce_loss(latents: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Eq. 10 over the N_L latent audio tokens of each sample: -log(exp(sim(a,a+)) / sum_i exp(sim(a,a_i))).

    ``latents`` (B, N_L, D). Each latent token a_j is an anchor whose positive is
    itself and whose negatives are the other latent tokens of the same sample,
    so minimising it pushes the latent components apart (sim = cosine similarity,
    temperature 1 as in the paper). Averaged over anchors and samples.
    """
    z = F.normalize(latents, dim=-1)
    sim = z @ z.transpose(1, 2) / temperature  # (B, N_L, N_L)
    labels = torch.arange(z.shape[1], device=z.device).expand(z.shape[0], -1)
    return F.cross_entropy(sim.flatten(0, 1), labels.flatten())
