"""Loading user-supplied weight files for the optional feature networks (FID, LPIPS).

Nothing is ever downloaded: the user passes a local file. ``.safetensors`` files are read
with safetensors; anything else with ``torch.load(weights_only=True)`` (no arbitrary
unpickling), which reads the ``.pth`` files that pytorch-fid and lpips distribute.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from tinct.errors import TinctError

__all__ = ["WeightsError", "read_state_dict", "load_strict"]


class WeightsError(TinctError, ValueError):
    """A weight file is missing, unreadable or does not fit the network; names the file."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` dict from a ``.pth``/``.pt`` or ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weight file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many unrelated types
        raise WeightsError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of named tensors")
    return dict(state)


def _examples(names: Iterable[str], limit: int = 4) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def load_strict(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    path: str | os.PathLike,
    what: str,
    ignore_prefixes: tuple[str, ...] = (),
) -> None:
    """Load ``state`` into ``module``; every parameter and buffer must be present with its shape.

    Keys starting with one of ``ignore_prefixes`` (parts of a published file that this
    network does not use, e.g. AlexNet's classifier) are dropped first. A BatchNorm
    ``num_batches_tracked`` counter may be absent (old files lack it; it is unused in eval).
    Raises :class:`WeightsError` naming the file and the first few mismatches.
    """
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {_examples(missing)}")
    if unexpected:
        problems.append(f"unexpected {_examples(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shape {_examples(wrong_shape)}")
    if problems:
        raise WeightsError(f"{path}: does not fit the {what} ({'; '.join(problems)})")
    for key, value in expected.items():
        if key in state:
            value.copy_(state[key].to(value.dtype))
