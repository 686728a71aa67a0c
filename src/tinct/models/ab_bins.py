"""Colour as classification: quantised ab bins, soft targets, rebalancing, annealed-mean decoding.

The idea of Zhang, Isola & Efros (ECCV 2016): the ab plane is cut into cells of side
``GRID`` (10 Lab units); a network predicts a distribution over the cells that lie in the
sRGB gamut, trained with soft targets and weights that favour rare (usually saturated)
colours; an "annealed mean" of the distribution (temperature T = 0.38) decodes it to a
vivid yet spatially coherent colour.

Bin set: the cells whose centre is the rounding (to the nearest multiple of 10) of the ab
of some 8-bit sRGB colour, grown by one cell in the four axis directions so that colours
on the gamut edge have a neighbour on either side for the soft encoding. This gives
``NUM_BINS`` cells (the paper, quantising ImageNet's colours, kept 313).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "GRID",
    "ANNEALED_MEAN_T",
    "bin_centers",
    "soft_encode",
    "empirical_prior",
    "rebalancing_weights",
    "annealed_mean",
    "commit_chroma",
]

GRID = 10.0
ANNEALED_MEAN_T = 0.38
_HALF_CELLS = 12  # cells from -120 to 120 on each axis
_SOFT_NEIGHBOURS = 5
_SOFT_SIGMA = 5.0
_PRIOR_SIGMA = 5.0


@lru_cache(maxsize=1)
def _bin_centers_np() -> np.ndarray:
    from scipy.ndimage import binary_dilation

    from tinct.color import rgb_to_lab

    levels = np.arange(0, 256, 3, dtype=np.float32) / 255.0
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    ab = rgb_to_lab(np.stack([r, g, b], axis=-1).reshape(-1, 3))[:, 1:]
    cells = np.round(ab / GRID).astype(int) + _HALF_CELLS
    hit = np.zeros((2 * _HALF_CELLS + 1,) * 2, dtype=bool)
    hit[cells[:, 0], cells[:, 1]] = True
    hit = binary_dilation(hit)  # 4-neighbourhood
    a_idx, b_idx = np.nonzero(hit)
    return np.stack([(a_idx - _HALF_CELLS) * GRID, (b_idx - _HALF_CELLS) * GRID], axis=1).astype(np.float32)


def bin_centers() -> torch.Tensor:
    """The ab centres of the in-gamut bins, float32 ``(Q, 2)`` in Lab units."""
    return torch.from_numpy(_bin_centers_np().copy())


NUM_BINS = len(_bin_centers_np())


def soft_encode(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Soft one-hot targets: each pixel spreads over its 5 nearest bins with a Gaussian (sigma 5).

    Args:
        ab: ``(B, 2, H, W)`` in Lab units.
        centers: ``(Q, 2)`` bin centres.
    Returns:
        ``(B, Q, H, W)`` float targets summing to 1 over Q.
    """
    b, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)  # (N, 2)
    dist2 = torch.cdist(flat, centers.to(flat)).square()  # (N, Q)
    near_d2, near_idx = dist2.topk(_SOFT_NEIGHBOURS, dim=1, largest=False)
    weights = torch.softmax(-near_d2 / (2 * _SOFT_SIGMA**2), dim=1)
    target = torch.zeros_like(dist2).scatter_(1, near_idx, weights)
    return target.reshape(b, h, w, -1).permute(0, 3, 1, 2)


def empirical_prior(ab_samples: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Smoothed probability of each bin among ``ab_samples (N, 2)``; returns ``(Q,)`` summing to 1."""
    idx = torch.cdist(ab_samples.float(), centers).argmin(dim=1)
    counts = torch.bincount(idx, minlength=len(centers)).double()
    prior = counts / counts.sum()
    # Smooth over the ab plane so neighbouring bins share evidence.
    d2 = torch.cdist(centers.double(), centers.double()).square()
    kernel = torch.exp(-d2 / (2 * _PRIOR_SIGMA**2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    smooth = kernel.T @ prior
    return (smooth / smooth.sum()).float()


def histogram(ab: torch.Tensor, centers: torch.Tensor, cell: int = 4) -> torch.Tensor:
    """The share of each bin among the colours of each photo: ``ab (B, 2, H, W)`` in Lab units
    -> ``(B, Q)`` summing to 1. Colours are averaged over ``cell x cell`` squares first (what a
    stride-4 network predicts), then counted at their nearest bin centre."""
    if ab.ndim != 4 or ab.shape[1] != 2:
        raise ValueError(f"expected ab of shape (B, 2, H, W), got {tuple(ab.shape)}")
    if min(ab.shape[-2:]) >= cell > 1:
        ab = F.avg_pool2d(ab, cell)
    flat = ab.permute(0, 2, 3, 1).reshape(ab.shape[0], -1, 2).float()
    nearest = torch.cdist(flat, centers.to(flat)[None].expand(ab.shape[0], -1, -1)).argmin(dim=2)  # (B, N)
    counts = torch.zeros(ab.shape[0], len(centers), dtype=flat.dtype, device=flat.device)
    counts.scatter_add_(1, nearest, torch.ones_like(nearest, dtype=flat.dtype))
    return counts / counts.sum(dim=1, keepdim=True)


def rebalancing_weights(prior: torch.Tensor, mix: float = 0.5) -> torch.Tensor:
    """Per-bin weights ``w ∝ ((1 - mix) p + mix / Q)^-1`` normalised so that ``E_p[w] = 1``."""
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"rebalancing mix must be in [0, 1], got {mix}")
    q = prior.numel()
    weights = 1.0 / ((1 - mix) * prior + mix / q)
    return weights / (prior * weights).sum()


def annealed_mean(logits: torch.Tensor, centers: torch.Tensor, temperature: float = ANNEALED_MEAN_T) -> torch.Tensor:
    """Decode ``(B, Q, H, W)`` logits to ab ``(B, 2, H, W)`` in Lab units.

    ``temperature`` 1 gives the mean (desaturated), -> 0 the mode (vivid, blotchy).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    probs = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", probs, centers.to(probs))


def rebalanced_cross_entropy(
    logits: torch.Tensor, ab: torch.Tensor, centers: torch.Tensor, class_weights: torch.Tensor
) -> torch.Tensor:
    """Zhang et al.'s loss: soft-target cross-entropy weighted by the nearest bin's rarity.

    Args:
        logits: ``(B, Q, h, w)``.
        ab: ground truth ``(B, 2, H, W)`` in Lab units; area-averaged down to ``(h, w)``.
        centers: ``(Q, 2)``; class_weights: ``(Q,)``.
    """
    if ab.shape[-2:] != logits.shape[-2:]:
        ab = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
    target = soft_encode(ab, centers)
    pixel_weight = class_weights.to(logits)[target.argmax(dim=1)]  # (B, h, w)
    nll = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
    return (pixel_weight * nll).mean()


def hue_concentration(logits: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """How sure a predicted distribution is of the *hue*: ``R = |sum_q p_q u_q|``.

    ``p = softmax(logits)`` (temperature 1) and ``u_q`` is the unit hue vector of bin ``q``
    (zero for the bins within 1 Lab unit of gray). R is 1 when all the mass is on one hue and
    falls towards 0 as the mass spreads over hues that cancel (or sits on gray).

    Args:
        logits: ``(B, Q, H, W)``; centers: ``(Q, 2)`` in Lab units.
    Returns:
        ``(B, 1, H, W)`` in [0, 1].
    """
    mean_hue = torch.einsum("bqhw,qc->bchw", torch.softmax(logits, dim=1), _unit_hues(centers.to(logits)))
    return mean_hue.norm(dim=1, keepdim=True).clamp_max(1.0)


def _unit_hues(centers: torch.Tensor) -> torch.Tensor:
    """``(Q, 2)`` unit hue vectors of the bin centres; zero within 1 Lab unit of gray."""
    chroma = centers.norm(dim=1, keepdim=True)
    return torch.where(chroma > 1, centers / chroma.clamp_min(1e-6), torch.zeros_like(centers))


def annealed_mean_and_hue_concentration(
    logits: torch.Tensor, centers: torch.Tensor, temperature: float = ANNEALED_MEAN_T
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`annealed_mean` ``(B, 2, H, W)`` and :func:`hue_concentration` ``(B, 1, H, W)`` of
    the same logits from one exponential: ``exp(z / T) = exp(z) ** (1 / T)`` (a square at
    T = 0.5), which makes the pair 40 % cheaper than the two softmaxes. Mass below float32's
    smallest number (``exp(z - max z) < 1e-38``) is dropped: harmless for T <= 1."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    centers = centers.to(logits)
    e = (logits - logits.amax(dim=1, keepdim=True)).exp()  # the largest is 1: no sum is zero
    mean_hue = torch.einsum("bqhw,qc->bchw", e, _unit_hues(centers)) / e.sum(dim=1, keepdim=True)
    e_t = e.pow(1.0 / temperature)
    ab = torch.einsum("bqhw,qc->bchw", e_t, centers) / e_t.sum(dim=1, keepdim=True)
    return ab, mean_hue.norm(dim=1, keepdim=True).clamp_max(1.0)


def check_hue_gate(low: float, high: float, names: tuple[str, str] = ("hue gate low", "hue gate high")) -> None:
    """Raise ``ValueError`` naming ``names`` unless the gate is off (``high == 0``) or ``0 <= low < high <= 1``."""
    if high == 0:
        return
    if not 0 <= low < high <= 1:
        raise ValueError(f"{names[0]} and {names[1]} must satisfy 0 <= low < high <= 1 (high 0: no gate), got {low} and {high}")


def gate_by_hue(ab: torch.Tensor, concentration: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Scale ``ab (B, 2, H, W)`` by ``clip((R - low) / (high - low), 0, 1)``, R from :func:`hue_concentration`.

    Pixels whose hue the network is unsure of (R <= ``low``) go gray, those it is sure of
    (R >= ``high``) keep their colour; hue is kept. ``high = 0`` turns the gate off.
    """
    check_hue_gate(low, high)
    if high == 0:
        return ab
    return ab * ((concentration - low) / (high - low)).clamp(0.0, 1.0)


def check_commitment(floor: float, gain: float, names: tuple[str, str] = ("chroma floor", "chroma gain")) -> None:
    """Raise ``ValueError`` naming ``names[0]`` / ``names[1]`` unless ``floor >= 0`` and ``gain > 0``."""
    if floor < 0:
        raise ValueError(f"{names[0]} must be >= 0, got {floor}")
    if gain <= 0:
        raise ValueError(f"{names[1]} must be > 0, got {gain}")


def commit_chroma(ab: torch.Tensor, floor: float = 0.0, gain: float = 1.0) -> torch.Tensor:
    """Commit to confident colour, abstain from faint tints: chroma ``c -> gain * max(c - floor, 0)``.

    Hue is kept. A broad predicted distribution decodes to a faint, often brownish mean; on
    the many near-neutral pixels of a photo such a tint costs more CIEDE2000 than gray, while
    a confident colour decoded by a mean comes out weaker than it should. ``floor = 0``,
    ``gain = 1`` leaves ``ab`` unchanged.

    Args:
        ab: ``(B, 2, H, W)`` in Lab units.
        floor: chroma (Lab units, >= 0) at and below which a pixel becomes gray.
        gain: factor (> 0) on the chroma left above ``floor``.
    Returns:
        ``(B, 2, H, W)`` in Lab units.
    """
    check_commitment(floor, gain)
    if floor == 0 and gain == 1:
        return ab
    chroma = ab.norm(dim=1, keepdim=True)
    scale = gain * (chroma - floor).clamp_min(0) / chroma.clamp_min(1e-6)
    return ab * scale
