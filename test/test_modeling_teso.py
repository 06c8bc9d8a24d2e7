"""TeSO's equations checked against hand computations: dynamic mask (Eq. 3-4), PMQS (Eq. 5-6), InfoNCE (Eq. 10)."""
from __future__ import annotations

import math

import pytest
import torch

from avs_core.modeling.losses import latent_infonce_loss, triplet_alignment_loss
from avs_core.modeling.teso import PMQS, SeDAM


@pytest.fixture
def sedam():
    torch.manual_seed(3)
    return SeDAM(audio_dim=6, text_dim=5, dim=8, n_latent=3, n_layers=2, heads=2).eval()


def test_dynamic_mask_follows_eq_3_and_4(sedam):
    torch.manual_seed(0)
    audio, text = torch.randn(4, 6), torch.randn(4, 5, 5)
    pad = torch.zeros(4, 5, dtype=torch.bool)
    pad[1, 3:] = True
    out = sedam(audio, text, pad)

    # By hand: scaled dot products of the first cross-modal layer's per-head projections,
    # averaged over heads and latent keys.
    attn = sedam.layers[0].attn
    w_q, w_k, _ = attn.in_proj_weight.split(8)
    b_q, b_k, _ = attn.in_proj_bias.split(8)
    f_t = sedam.text_proj(text).masked_fill(pad[..., None], 0.0)
    latents = sedam.latent_proj(audio).view(4, 3, 8)
    q, k = f_t @ w_q.T + b_q, latents @ w_k.T + b_k
    xi = torch.zeros(4, 5)
    for h in range(2):
        qh, kh = q[..., 4 * h: 4 * h + 4], k[..., 4 * h: 4 * h + 4]
        xi += (qh @ kh.transpose(1, 2) / math.sqrt(4)).mean(-1) / 2
    torch.testing.assert_close(out["xi"], xi)
    expected = (xi <= 0) | pad  # Eq. 4: m_i = 0 if xi_i > 0 else -inf; padded cues never attend
    assert torch.equal(out["mask"], expected)
    assert expected.any() and (~expected).any()  # the example exercises both branches
    assert out["f_at"].shape == (4, 5, 8) and out["latents"].shape == (4, 3, 8)


def test_pmqs_ignores_masked_cues_and_matches_eq_5_6():
    torch.manual_seed(1)
    pmqs = PMQS(query_dim=6, feat_dim=4)
    torch.nn.init.normal_(pmqs.out.weight)  # the zero-initialised output projection would hide everything
    queries, f_at = torch.randn(2, 3, 6), torch.randn(2, 4, 4)
    mask = torch.tensor([[False, True, False, True], [True, True, True, True]])
    out = pmqs(queries, f_at, mask)

    scores = pmqs.q(queries[0]) @ pmqs.k(f_at[0]).T / 2.0 + torch.where(mask[0], float("-inf"), 0.0)
    expected0 = queries[0] + pmqs.out(scores.softmax(-1) @ pmqs.v(f_at[0]))
    torch.testing.assert_close(out[0], expected0)
    torch.testing.assert_close(out[1], queries[1])  # nothing survived the mask: no injection

    changed = f_at.clone()
    changed[0, 1] += 100.0  # a masked cue has no influence
    torch.testing.assert_close(pmqs(queries, changed, mask), out)
    loss = pmqs(queries, f_at, mask).sum()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in pmqs.parameters())


def test_infonce_matches_hand_computation():
    latents = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]])
    c = 1 / math.sqrt(2)
    sims = [[1, 0, c], [0, 1, c], [c, c, 1]]
    expected = sum(-math.log(math.exp(sims[i][i]) / sum(math.exp(s) for s in sims[i])) for i in range(3)) / 3
    assert latent_infonce_loss(latents).item() == pytest.approx(expected, rel=1e-6)
    # Distinct (orthogonal) latent components score lower than redundant ones.
    assert latent_infonce_loss(torch.eye(3)[None]) < latent_infonce_loss(torch.ones(1, 3, 3))


def test_triplet_alignment_loss():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert triplet_alignment_loss(a, a, margin=0.2).item() == pytest.approx(0.0)  # aligned: pos 0, neg 1
    assert triplet_alignment_loss(a, a.flip(0), margin=0.2).item() == pytest.approx(1.2)
    assert triplet_alignment_loss(a[:1], a[:1]).item() == 0.0
