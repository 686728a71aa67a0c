"""Model checkpoints: safetensors weights with the model's JSON description in the header.

One ``.safetensors`` file holds everything needed to rebuild a model, and nothing in it is
unpickled. Its header metadata key ``"tinct"`` holds JSON:

    {"format_version": 1, "model": "<registered name>", "config": {...typed config...},
     "data_manifest_sha256": "..." | null, "metrics": {...}, "extra": {...}}

Shipped weights live in ``tinct/weights/<name>.safetensors`` (with their ONNX export
``<name>.onnx`` beside them, see :mod:`tinct.engine`); every file there is verified against
``tinct/weights/SHA256SUMS`` before use, and a file without a line in it is refused.

Finding, verifying and describing a checkpoint (:func:`resolve_model_path`,
:func:`read_checkpoint_info`) reads the header as JSON and needs neither torch nor the
model families: colorizing with an ONNX export never imports torch. A damaged checkpoint
(a description that is not an object, no model name, settings of the wrong type or that do
not fit the stored tensors) raises ``ValueError`` with one line that names the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinct.io import sha256_file  # re-exported: callers check weights with it
from tinct.models.registry import UnknownModelError, build_config, list_models, model_class

if TYPE_CHECKING:
    import torch

__all__ = [
    "FORMAT_VERSION",
    "DEFAULT_MODEL",
    "save_checkpoint",
    "read_checkpoint_info",
    "read_safetensors_header",
    "CheckpointInfo",
    "load",
    "resolve_model_path",
    "shipped_models",
    "sha256_file",
    "verify_shipped_file",
    "record_shipped_sum",
    "WEIGHTS_DIR",
]

FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "tinct-v2"
SUMS_NAME = "SHA256SUMS"


STORAGE_DTYPES = ("float32", "float16")


def _tensors_of(model, storage: str = "float32") -> dict[str, torch.Tensor]:
    import torch

    if storage not in STORAGE_DTYPES:
        raise ValueError(f"storage must be one of {sorted(STORAGE_DTYPES)}, got {storage!r}")
    dtype = torch.float16 if storage == "float16" else None
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
    from safetensors.torch import save

    from tinct.io import atomic_file

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


# Bytes per element of the safetensors dtypes.
_DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
_MAX_HEADER = 100_000_000  # the format's own limit on the JSON header


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, dict]]:
    """The header of a safetensors file, read as JSON without torch: ``(metadata, tensors)``,
    ``tensors`` mapping each name to ``{"dtype", "shape", "data_offsets"}``.

    The layout is checked (header size, each tensor's byte range against its dtype and
    shape, the file's length); ``ValueError`` naming the file if it is not a safetensors file.
    """
    path = Path(path)

    def damaged(reason: str) -> ValueError:
        return ValueError(f"{path}: not a safetensors checkpoint ({reason})")

    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if not 0 < length <= min(size - 8, _MAX_HEADER):
                raise damaged(f"its header length field reads {length}; the file has {size} bytes")
            header = json.loads(handle.read(length))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise damaged(f"header is not JSON: {exc}") from None
    except IsADirectoryError:
        raise damaged("a folder") from None
    if not isinstance(header, dict):
        raise damaged("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise damaged("__metadata__ is not a map of strings")
    data_size = size - 8 - length
    for name, entry in header.items():
        try:
            itemsize = _DTYPE_SIZES[entry["dtype"]]
            begin, end = (int(v) for v in entry["data_offsets"])
            count = math.prod(int(d) for d in entry["shape"])
        except (KeyError, TypeError, ValueError):
            raise damaged(f"tensor {name!r} has no valid dtype, shape and data_offsets") from None
        if not 0 <= begin <= end <= data_size or end - begin != count * itemsize:
            raise damaged(f"tensor {name!r}: bytes {begin}..{end} do not hold {entry['dtype']} {entry['shape']} in {data_size} bytes of data")
    return metadata, header


def read_checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON description stored in a checkpoint (without torch); ValueError naming the
    file if it is not one or its description is damaged (not an object, no model name,
    config not an object, another format version)."""
    path = Path(path)
    metadata, _ = read_safetensors_header(path)
    if "tinct" not in metadata:
        raise ValueError(f"{path}: safetensors file without a tinct model description")
    try:
        info = json.loads(metadata["tinct"])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the tinct model description is not JSON ({exc})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: the tinct model description is a JSON {type(info).__name__}, expected an object")
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {version}, this tinct reads {FORMAT_VERSION}")
    if not isinstance(info.get("model"), str) or not info["model"]:
        raise ValueError(f"{path}: the tinct model description has no 'model' (the model family's name)")
    info.setdefault("config", {})
    if not isinstance(info["config"], dict):
        raise ValueError(f"{path}: the tinct model description's 'config' is a {type(info['config']).__name__}, expected an object")
    return info


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about its model besides the weights (:func:`load` returns it).

    Attributes:
        path: the checkpoint file (or the ``.onnx`` export an engine opened directly).
        family: the registered model family (``"tinctnet2"`` ...).
        config: the family's settings as stored (JSON values).
        metrics: what training recorded (epoch, losses, decoding tuning ...).
        data_manifest_sha256: the training data manifest's digest, or None.
        extra: anything else training stored (``data_config``, ``train_config`` ...).
    """

    path: Path
    family: str
    config: dict[str, Any]
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    data_manifest_sha256: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_header(cls, path: str | os.PathLike, header: dict[str, Any]) -> CheckpointInfo:
        """From the JSON description :func:`read_checkpoint_info` returns."""
        return cls(Path(path), header["model"], header.get("config") or {}, header.get("metrics") or {},
                   header.get("data_manifest_sha256"), header.get("extra") or {})

    @classmethod
    def read(cls, path: str | os.PathLike) -> CheckpointInfo:
        """A checkpoint's description, read without torch (ValueError naming a damaged file)."""
        return cls.from_header(path, read_checkpoint_info(path))

    def header(self) -> dict[str, Any]:
        """The JSON description as stored in the file (the form :func:`read_checkpoint_info` returns)."""
        return {"format_version": FORMAT_VERSION, "model": self.family, "config": self.config,
                "data_manifest_sha256": self.data_manifest_sha256, "metrics": self.metrics, "extra": self.extra}


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


def _shipped_sums() -> dict[str, str]:
    sums_file = WEIGHTS_DIR / SUMS_NAME
    if not sums_file.exists():
        return {}
    sums = {}
    for number, line in enumerate(sums_file.read_text().splitlines(), 1):
        if line.strip():
            parts = line.split()
            if len(parts) != 2 or len(parts[0]) != 64:
                raise ValueError(f"{sums_file}:{number}: expected 'SHA256  NAME', got {line!r}")
            sums[parts[1].lstrip("*")] = parts[0]
    return sums


def verify_shipped_file(path: Path) -> str:
    """Check a file of ``tinct/weights`` against ``SHA256SUMS``; returns its SHA-256.

    ValueError naming the file when it has no line there (unverified weights are refused)
    or its digest differs (the package is damaged).
    """
    expected = _shipped_sums().get(path.name)
    if expected is None:
        raise ValueError(f"{path}: no line for it in weights/{SUMS_NAME}; refusing unverified weights")
    actual = sha256_file(path)
    if actual != expected:
        raise ValueError(f"{path}: SHA-256 does not match weights/{SUMS_NAME}; the package is damaged")
    return actual


def record_shipped_sum(path: Path) -> str:
    """Put ``path``'s SHA-256 into ``weights/SHA256SUMS`` (its line replaced or added; lines
    sorted by name, in ``sha256sum`` format); returns the digest. Part of the release recipe:
    ``tinct export`` calls it for the exports it writes beside the shipped weights."""
    from tinct.io import atomic_file

    sums = _shipped_sums()
    sums[path.name] = digest = sha256_file(path)
    with atomic_file(WEIGHTS_DIR / SUMS_NAME, "w") as handle:
        handle.writelines(f"{sums[name]}  {name}\n" for name in sorted(sums))
    return digest


def shipped_models() -> dict[str, Path]:
    """Names of the weights shipped inside the package -> their files."""
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """The checkpoint file that ``name_or_path`` names: a ``.safetensors`` file, a run folder
    (its best, last or model ``.safetensors``), ``"default"`` or a shipped name (verified
    against ``SHA256SUMS``). FileNotFoundError, ValueError or UnknownModelError otherwise."""
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
        verify_shipped_file(shipped[name])
        return shipped[name]
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


_JSON_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _fits(value: Any, annotation: str) -> bool | None:
    """Whether a JSON value fits a config annotation (``int``, ``float``, ``bool``, ``str``,
    ``tuple[X, ...]``); None for annotations this does not judge."""
    if annotation.startswith("tuple[") and annotation.endswith(", ...]"):
        inner = annotation[len("tuple[") : -len(", ...]")]
        if not isinstance(value, (list, tuple)):
            return False
        fits = [_fits(item, inner) for item in value]
        return None if None in fits else all(fits)
    expected = _JSON_TYPES.get(annotation)
    if expected is None:
        return None
    if isinstance(value, bool) or expected is bool:
        return isinstance(value, bool) and expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def _check_config_types(path: Path, family: str, values: dict[str, Any]) -> None:
    """ValueError naming the file and the key when a stored setting has the wrong JSON type."""
    for field in dataclasses.fields(model_class(family).Config):
        annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        if field.name in values and _fits(values[field.name], annotation) is False:
            value = values[field.name]
            raise ValueError(
                f"{path}: config {field.name!r} of model {family!r} must be {annotation}, "
                f"got {value!r} ({type(value).__name__})"
            )


def _check_shapes(path: Path, family: str, own: dict[str, Any], stored: dict[str, dict]) -> None:
    """ValueError (one line) when the stored tensors are not those the stored config builds."""
    missing = [k for k in own if k not in stored]
    unexpected = [k for k in stored if k not in own]
    wrong = [k for k in own if k in stored and list(own[k].shape) != list(stored[k]["shape"])]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} of another shape (first {k}: {tuple(stored[k]['shape'])} in the file, "
                     f"{tuple(own[k].shape)} for the config)")
    if missing:
        parts.append(f"{len(missing)} missing (first {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
    raise ValueError(f"{path}: weights do not fit model {family!r} as its stored config builds it: tensors " + "; ".join(parts))


def load(name_or_path: str | os.PathLike = "default", device: str | torch.device = "cpu") -> tuple[Any, CheckpointInfo]:
    """Rebuild a model from shipped weights (by name) or a checkpoint file, in eval mode:
    ``(model, info)``, ``info`` the :class:`CheckpointInfo` of the file it came from.

    ``name_or_path`` is ``"default"``, the name of shipped weights (``tinct models`` lists
    them), a ``.safetensors`` checkpoint, or a run folder holding ``best.safetensors``.
    A damaged checkpoint raises ValueError with one line naming the file.
    """
    import torch

    path = resolve_model_path(name_or_path)
    info = read_checkpoint_info(path)
    family = info["model"]
    try:
        cls = model_class(family)
    except UnknownModelError as exc:
        raise ValueError(f"{path}: {exc}") from None
    _check_config_types(path, family, info["config"])
    try:
        model = cls(build_config(family, info["config"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    _, stored = read_safetensors_header(path)
    _check_shapes(path, family, model.state_dict(), stored)
    tensors = _read_tensors(path)
    if isinstance(model, torch.nn.Module):
        model.load_state_dict(tensors)
        model.to(device).eval()
    else:
        model.load_state_dict({k: v.numpy() for k, v in tensors.items()})
    return model, CheckpointInfo.from_header(path, info)
