"""Model checkpoints: safetensors weights with the model's JSON description in the header.

One ``.safetensors`` file holds everything needed to rebuild a model, and nothing in it is
unpickled. Its header metadata key ``"tinct"`` holds JSON:

    {"format_version": 1, "model": "<registered name>", "config": {...typed config...},
     "data_manifest_sha256": "..." | null, "metrics": {...}, "extra": {...}}

Shipped weights live in ``tinct/weights/<name>.safetensors`` and are verified against
``tinct/weights/SHA256SUMS`` before use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save

from tinct.io import atomic_file
from tinct.models.registry import UnknownModelError, build_config, list_models, model_class

__all__ = [
    "FORMAT_VERSION",
    "DEFAULT_MODEL",
    "save_checkpoint",
    "read_checkpoint_info",
    "load",
    "resolve_model_path",
    "shipped_models",
    "sha256_file",
    "WEIGHTS_DIR",
]

FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "tinct-v1"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


STORAGE_DTYPES = {"float32": None, "float16": torch.float16}


def _tensors_of(model, storage: str = "float32") -> dict[str, torch.Tensor]:
    if storage not in STORAGE_DTYPES:
        raise ValueError(f"storage must be one of {sorted(STORAGE_DTYPES)}, got {storage!r}")
    dtype = STORAGE_DTYPES[storage]
    tensors = {}
    for key, value in model.state_dict().items():
        tensor = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[key] = tensor.contiguous()
    return tensors


def save_checkpoint(
    path: str | os.PathLike,
    model,
    data_manifest_sha256: str | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    storage: str = "float32",
) -> Path:
    """Write ``model`` (weights + config) to ``path`` atomically; returns the path.

    ``storage="float16"`` stores floating-point tensors at half precision (half the file
    size); :func:`load` casts them back to the model's float32 parameters.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: checkpoints are .safetensors files")
    info = {
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "config": dataclasses.asdict(model.config),
        "data_manifest_sha256": data_manifest_sha256,
        "metrics": metrics or {},
        "extra": extra or {},
    }
    payload = save(_tensors_of(model, storage), metadata={"tinct": json.dumps(info, sort_keys=True)})
    with atomic_file(path) as handle:
        handle.write(payload)
    return path


def read_checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON description stored in a checkpoint; ValueError if the file is not one."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a safetensors checkpoint ({exc})") from None
    if "tinct" not in metadata:
        raise ValueError(f"{path}: safetensors file without a tinct model description")
    info = json.loads(metadata["tinct"])
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {version}, this tinct reads {FORMAT_VERSION}")
    return info


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


def _shipped_sums() -> dict[str, str]:
    sums_file = WEIGHTS_DIR / "SHA256SUMS"
    if not sums_file.exists():
        return {}
    sums = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            sums[name.lstrip("*")] = digest
    return sums


def shipped_models() -> dict[str, Path]:
    """Names of the weights shipped inside the package -> their files."""
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".safetensors" or candidate.exists():
        if not candidate.exists():
            raise FileNotFoundError(f"{candidate}: no such checkpoint")
        if candidate.is_dir():
            for name in ("best.safetensors", "last.safetensors", "model.safetensors"):
                if (candidate / name).exists():
                    return candidate / name
            raise FileNotFoundError(f"{candidate}: folder holds no best/last/model.safetensors")
        return candidate
    name = str(name_or_path)
    if name == "default":
        name = DEFAULT_MODEL
    shipped = shipped_models()
    if name in shipped:
        path = shipped[name]
        expected = _shipped_sums().get(path.name)
        if expected is not None and sha256_file(path) != expected:
            raise ValueError(f"{path}: SHA-256 does not match weights/SHA256SUMS; the package is damaged")
        return path
    families = list_models()
    if name in families:
        raise ValueError(
            f"model family {name!r} has no shipped weights: train it (tinct train --model {name}) "
            f"and pass the checkpoint path; shipped weights: {', '.join(shipped) or 'none'}"
        )
    raise UnknownModelError(
        f"unknown model {name!r}: not a checkpoint file, shipped weights ({', '.join(shipped) or 'none'}) "
        f"or model family ({', '.join(families)})"
    )


def load(name_or_path: str | os.PathLike = "default", device: str | torch.device = "cpu"):
    """Rebuild a model from shipped weights (by name) or a checkpoint file, in eval mode.

    ``name_or_path`` is ``"default"``, the name of shipped weights (``tinct models`` lists
    them), a ``.safetensors`` checkpoint, or a run folder holding ``best.safetensors``.
    """
    path = resolve_model_path(name_or_path)
    info = read_checkpoint_info(path)
    cls = model_class(info["model"])
    model = cls(build_config(info["model"], info["config"]))
    tensors = _read_tensors(path)
    if isinstance(model, torch.nn.Module):
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path}: weights do not fit model {info['model']!r} (missing {missing}, unexpected {unexpected})")
        model.to(device).eval()
    else:
        model.load_state_dict({k: v.numpy() for k, v in tensors.items()})
    model.checkpoint_info = info
    model.checkpoint_path = path
    return model
