"""What a run writes besides checkpoints: ``metrics.csv``, TensorBoard logs, sample grids.

Every file is rewritten atomically, so a run killed at any moment leaves readable files;
on resume the CSV is cut back to the epochs the resume state has, so an epoch that was
redone is not listed twice.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tinct.color import lab_to_rgb_torch
from tinct.io import atomic_file

__all__ = ["MetricsLog", "sample_grid", "write_text_atomic", "naming_the_file", "predict_full_ab"]


@contextlib.contextmanager
def naming_the_file(path: str | os.PathLike):
    """Re-raise an OSError met while writing ``path`` (a full disk, a read-only folder) with
    ``path`` as its file name, so the one-line error says which file could not be written."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flushed to disk, and rename it into
    place (nothing partial is left if that fails; the OSError names ``path``)."""
    with naming_the_file(path), atomic_file(path, "w") as handle:
        handle.write(text)


class MetricsLog:
    """One CSV row per epoch (``epoch`` is 1-based: epochs completed) plus TensorBoard scalars.

    Args:
        run_dir: the run folder.
        epochs_done: rows with a larger ``epoch`` are dropped (they belong to redone work).
        tensorboard: write TensorBoard event files under ``run_dir/tensorboard`` if the
            ``tensorboard`` package is installed (a note is printed when it is not).
        global_step: the step the run resumes from; TensorBoard discards its events of later
            steps (they belong to work that is being redone).
    """

    def __init__(self, run_dir: Path, epochs_done: int = 0, tensorboard: bool = True, global_step: int = 0):
        self.path = Path(run_dir) / "metrics.csv"
        self.rows: list[dict[str, str]] = []
        self.columns: list[str] = []
        if self.path.exists():
            with open(self.path, newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or [])
                self.rows = [row for row in reader if row.get("epoch", "").isdigit() and int(row["epoch"]) <= epochs_done]
            self._rewrite()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print("tinct: tensorboard is not installed; metrics go to metrics.csv only", file=sys.stderr)
            else:
                self.writer = SummaryWriter(
                    log_dir=str(Path(run_dir) / "tensorboard"), purge_step=global_step + 1 if global_step else None
                )

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, buffer.getvalue())

    def log_epoch(self, row: dict[str, Any], global_step: int) -> None:
        formatted = {key: _format(value) for key, value in row.items()}
        self.columns += [key for key in formatted if key not in self.columns]
        self.rows.append(formatted)
        self._rewrite()
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("epoch", "global_step") and isinstance(value, (int, float)):
                    self.writer.add_scalar(_tensorboard_tag(key), value, global_step)
            self.writer.flush()

    def log_step(self, values: dict[str, float], global_step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"step/{key}", value, global_step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _tensorboard_tag(key: str) -> str:
    # "train_loss" -> "train/loss", "val_psnr" -> "val/psnr": TensorBoard groups by prefix.
    for prefix in ("train_", "val_"):
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix):]}"
    return f"epoch/{key}"


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@torch.no_grad()
def predict_full_ab(model, l: torch.Tensor) -> torch.Tensor:
    """The model's ab for ``l (B, 1, S, S)``, upsampled (bilinear) to ``(B, 2, S, S)``."""
    ab = model.predict_ab(l)
    if ab.shape[-2:] != l.shape[-2:]:
        ab = F.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)
    return ab


@torch.no_grad()
def sample_grid(model, l: torch.Tensor, ab: torch.Tensor, gap: int = 2) -> np.ndarray:
    """Rows gray | prediction | truth, one column per image; uint8 ``(3 S + 2 gap, N S + (N-1) gap, 3)``.

    ``l (N, 1, S, S)`` and ``ab (N, 2, S, S)`` are in Lab units.
    """
    predicted = predict_full_ab(model, l).to(l)
    rows = [torch.zeros_like(ab), predicted, ab]
    rgb = [lab_to_rgb_torch(torch.cat([l, row], dim=1)) for row in rows]  # 3 x (N, 3, S, S) in [0, 1]
    n, _, size, _ = l.shape
    canvas = torch.ones(3, 3 * size + 2 * gap, n * size + (n - 1) * gap)
    for r, images in enumerate(rgb):
        for c in range(n):
            top, left = r * (size + gap), c * (size + gap)
            canvas[:, top : top + size, left : left + size] = images[c].cpu()
    return (canvas.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
