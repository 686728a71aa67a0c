"""Shared fixtures: the repository root, the shared photo folders, tiny checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _few_threads():
    # The suite runs on 2 cores; keep torch from oversubscribing them.
    torch.set_num_threads(1)
    yield


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the clone, or skip: it is not part of the repository."""
    if not (SHARED_DATA / "cbsd68").is_dir():
        pytest.skip(f"needs the shared photo folders at {SHARED_DATA} (not present on this machine)")
    return SHARED_DATA


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    """A small random tinctnet checkpoint whose output bias gives a clear, known colour.

    The regression head's bias is set so that every pixel predicts a = +40, b = +30
    (normalised by ab_norm = 110 through tanh), so tests can check that colour arrives.
    """
    from tinct.color import LAB
    from tinct.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("tinctnet", width=4, input_size=32, head="regression")
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.atanh(torch.tensor([40.0, 30.0]) / LAB.ab_norm))
    return save_checkpoint(tmp_path / "tiny.safetensors", model)


def make_sky_grass_photos(folder: Path, count: int = 24, seed: int = 0) -> Path:
    """Two-colour 40 x 48 photos (blue sky over green grass, random horizon and exposure):
    colour that a tiny model can learn from brightness and position in a few steps."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = np.empty((40, 48, 3), np.float32)
        horizon = rng.integers(10, 30)
        image[:horizon] = (0.3, 0.5, 0.9)
        image[horizon:] = (0.2, 0.6, 0.2)
        image = image * rng.uniform(0.6, 1.1) + rng.normal(0, 0.03, image.shape)
        Image.fromarray((image.clip(0, 1) * 255).astype(np.uint8)).save(folder / f"photo_{i:02d}.png")
    return folder


def gray_ramp(height: int = 24, width: int = 36) -> np.ndarray:
    """A uint8 (H, W) horizontal ramp from 20 to 235 (avoids clipping at black and white)."""
    return np.tile(np.linspace(20, 235, width).round().astype(np.uint8), (height, 1))
