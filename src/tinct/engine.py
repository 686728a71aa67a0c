"""Inference engines: ONNX Runtime for models with an export, torch for every other model.

Colorizing needs one function of a model, ``predict_ab``: lightness ``(B, 1, S, S)`` in Lab
units at the model's working size ``S = config.input_size`` -> ab ``(B, 2, s, s)`` in Lab
units. :func:`export_onnx` (``tinct export``) writes that whole function, network and
decoding, to an ONNX file, and :class:`OnnxModel` runs it with ONNX Runtime: no torch is
imported, and the network runs 2-4x faster on a CPU than in torch.

Where exports live:
    shipped weights  ``tinct/weights/<name>.onnx`` beside ``<name>.safetensors``, listed in
                     ``SHA256SUMS`` like the weights (``tinct export <name>`` writes both);
    checkpoints      ``<stem>.onnx`` beside ``<stem>.safetensors`` (``tinct export PATH``).

An export carries, in its ONNX metadata under the key ``"tinct"`` (JSON), the model family
and config, the working and output sizes, and the SHA-256 of the safetensors file it was
exported from, so an export of other weights (a checkpoint rewritten by further training) is
never used in their place.

Engine choice (:func:`open_model`): ``"auto"`` takes the export when there is a current one
and torch otherwise (a checkpoint from ``tinct train`` has none: it runs in torch without a
word); ``"onnx"`` requires an export; ``"torch"`` always rebuilds the torch model (for
checking, and for models that cannot be exported).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from tinct.io import sha256_file
from tinct.models.checkpoint import WEIGHTS_DIR, CheckpointInfo, resolve_model_path, verify_shipped_file

__all__ = [
    "ENGINES",
    "EXPORT_FORMAT_VERSION",
    "EngineNote",
    "OnnxModel",
    "export_onnx",
    "export_path",
    "open_model",
    "torch_predict_ab",
    "agreement",
]

ENGINES = ("auto", "onnx", "torch")
EXPORT_FORMAT_VERSION = 1
METADATA_KEY = "tinct"
INPUT_NAME, OUTPUT_NAME = "lightness", "ab"
DEFAULT_OPSET = 17


class EngineNote(UserWarning):
    """A model runs in torch although an export exists beside it (an export of other weights)."""


def export_path(checkpoint: str | os.PathLike) -> Path:
    """Where the ONNX export of a ``.safetensors`` file lives: the same name, ``.onnx``."""
    return Path(checkpoint).with_suffix(".onnx")


def _is_shipped(path: Path) -> bool:
    return path.resolve().parent == WEIGHTS_DIR.resolve()


class OnnxModel:
    """An exported model, run by ONNX Runtime on the CPU.

    Attributes:
        onnx_path: the ``.onnx`` file.
        name: the model family (``"tinctnet"`` ...), as a torch model's ``name``.
        config: the family's settings as attributes (``config.input_size`` is the working size).
        output_size: ``(h, w)`` of the ab it predicts.
        export_info: the export's own record (family, config, sizes, source file and digest).
    """

    backend = "onnx"

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - a core dependency
            raise ImportError("the ONNX engine needs onnxruntime (pip install onnxruntime), or use the torch engine") from None
        self.onnx_path = Path(path)
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f"{self.onnx_path}: no such ONNX file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
        # Idle worker threads sleep instead of spinning: right after a run the same cores compose
        # the full-resolution photo, and spinning threads would take their time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own error types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{self.onnx_path}: not an ONNX model ONNX Runtime can run ({reason})") from None
        self.export_info = self._read_metadata()
        self.name = self.export_info["model"]
        self.config = SimpleNamespace(**{**self.export_info.get("config", {}), "input_size": int(self.export_info["input_size"])})
        self.output_size = tuple(int(v) for v in self.export_info["output_size"])
        batch = self.session.get_inputs()[0].shape[0]
        self._fixed_batch = batch if isinstance(batch, int) else None

    def _read_metadata(self) -> dict[str, Any]:
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            info = json.loads(meta[METADATA_KEY])
        except (KeyError, json.JSONDecodeError):
            raise ValueError(f"{self.onnx_path}: an ONNX file without tinct's description (write exports with tinct export)") from None
        if not isinstance(info, dict) or info.get("format_version") != EXPORT_FORMAT_VERSION:
            version = info.get("format_version") if isinstance(info, dict) else None
            raise ValueError(f"{self.onnx_path}: export format version {version}, this tinct reads {EXPORT_FORMAT_VERSION}")
        missing = [key for key in ("model", "input_size", "output_size") if key not in info]
        if missing:
            raise ValueError(f"{self.onnx_path}: tinct's description of the export lacks {', '.join(missing)}")
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        size = info["input_size"]
        if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
            raise ValueError(f"{self.onnx_path}: expected one input {INPUT_NAME!r} and one output {OUTPUT_NAME!r}")
        if list(inputs[0].shape[1:]) != [1, size, size]:
            raise ValueError(f"{self.onnx_path}: input shape {inputs[0].shape} does not match input_size {size}")
        return info

    def own_info(self) -> CheckpointInfo:
        """The export described as a checkpoint of its own (path: the ``.onnx`` file), for an
        export opened without its safetensors file."""
        return CheckpointInfo(self.onnx_path, self.name, dict(self.export_info.get("config", {})))

    def source_sha256(self) -> str | None:
        """SHA-256 of the safetensors file this was exported from (None if not recorded)."""
        return self.export_info.get("source_sha256")

    def predict_ab(self, l: np.ndarray) -> np.ndarray:
        """``l (B, 1, S, S)`` float32 L in [0, 100] -> ab ``(B, 2, h, w)`` in Lab units."""
        l = np.ascontiguousarray(l, dtype=np.float32)
        size = self.config.input_size
        if l.ndim != 4 or l.shape[1:] != (1, size, size):
            raise ValueError(f"expected lightness of shape (B, 1, {size}, {size}), got {l.shape}")
        step = self._fixed_batch or len(l)
        parts = [self.session.run([OUTPUT_NAME], {INPUT_NAME: l[i : i + step]})[0] for i in range(0, len(l), step)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def torch_predict_ab(model, l: np.ndarray) -> np.ndarray:
    """Run a torch (or NumPy-backend) model's ``predict_ab`` on NumPy lightness ``(B, 1, S, S)``."""
    import torch

    with torch.inference_mode():
        ab = model.predict_ab(torch.from_numpy(np.ascontiguousarray(l, dtype=np.float32)))
    return ab.float().numpy() if isinstance(ab, torch.Tensor) else np.asarray(ab, dtype=np.float32)


def _current_export(checkpoint: Path, engine: str, threads: int) -> OnnxModel | None:
    """The export beside ``checkpoint`` if it was made from these very weights, else None.

    Shipped weights: the export must be listed in ``SHA256SUMS`` and match it, and must come
    from the shipped safetensors (ValueError otherwise: the package is inconsistent).
    A checkpoint's export of other weights gives an :class:`EngineNote` and None (torch runs).
    """
    onnx_path = export_path(checkpoint)
    shipped = _is_shipped(checkpoint)
    if not onnx_path.exists():
        if engine == "onnx":
            raise ValueError(f"{checkpoint}: no ONNX export ({onnx_path.name}); write it with: tinct export {_export_argument(checkpoint)}")
        if shipped:
            warnings.warn(f"{checkpoint.stem} has no ONNX export; running it in torch", EngineNote, stacklevel=3)
        return None
    if shipped:
        verify_shipped_file(onnx_path)
    model = OnnxModel(onnx_path, threads)
    if model.source_sha256() == sha256_file(checkpoint):
        return model
    problem = f"{onnx_path} was exported from other weights than {checkpoint.name}"
    if shipped or engine == "onnx":
        raise ValueError(f"{problem}; re-export it (tinct export {_export_argument(checkpoint)}) or use the torch engine")
    warnings.warn(f"{problem}; running in torch (tinct export {checkpoint} refreshes it)", EngineNote, stacklevel=3)
    return None


def _export_argument(checkpoint: Path) -> str:
    return checkpoint.stem if _is_shipped(checkpoint) else str(checkpoint)


def open_model(model: Any = "default", engine: str = "auto", threads: int = 1) -> tuple[Any, str, CheckpointInfo | None]:
    """The model to colorize with, the engine that runs it and the checkpoint it came from:
    ``(model, "onnx" | "torch", info)``.

    Args:
        model: ``"default"``, a shipped name, a ``.safetensors`` checkpoint or run folder, an
            ``.onnx`` export, or a model object (a torch/NumPy model runs in torch).
        engine: ``"auto"`` (the export when there is a current one, else torch), ``"onnx"``
            (an export is required) or ``"torch"``.
        threads: CPU threads for the engine.

    ``info`` is the safetensors file's :class:`~tinct.models.CheckpointInfo` (also when its
    export runs), an export's own description when an ``.onnx`` file is opened alone, and
    None for a model object.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if isinstance(model, OnnxModel):
        if engine == "torch":
            raise ValueError(f"{model.onnx_path}: an ONNX export cannot run in the torch engine; pass its .safetensors")
        return model, "onnx", model.own_info()
    if not isinstance(model, (str, os.PathLike)):
        if engine == "onnx":
            raise ValueError("engine 'onnx' needs a model name, checkpoint or .onnx path, not a model object")
        _use_torch_threads(threads)
        return model, "torch", None
    if Path(model).suffix == ".onnx":
        if engine == "torch":
            raise ValueError(f"{model}: an ONNX export cannot run in the torch engine; pass its .safetensors")
        exported = OnnxModel(model, threads)
        return exported, "onnx", exported.own_info()
    checkpoint = resolve_model_path(model)
    if engine != "torch":
        info = CheckpointInfo.read(checkpoint)  # a damaged checkpoint is named before any engine starts
        exported = _current_export(checkpoint, engine, threads)
        if exported is not None:
            return exported, "onnx", info
    from tinct.models import load

    _use_torch_threads(threads)
    loaded, info = load(checkpoint)
    return loaded, "torch", info


def _use_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))


# ---------------------------------------------------------------------------------------------
# Export (needs torch and the onnx package: the train extra)
# ---------------------------------------------------------------------------------------------


def _test_lightness(size: int, batch: int = 2) -> np.ndarray:
    """A photo-like test input ``(batch, 1, S, S)``: smooth shading, edges and fine texture."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    scenes = []
    for i in range(batch):
        scene = 50 + 30 * np.sin(6 * xx + i) * np.cos(4 * yy) + 15 * (xx + yy > 1 - 0.2 * i)
        scenes.append(scene + rng.normal(0, 3, scene.shape))
    return np.clip(np.stack(scenes)[:, None], 0, 100).astype(np.float32)


def export_onnx(model, source: str | os.PathLike | None = None, opset: int = DEFAULT_OPSET) -> bytes:
    """The ONNX bytes of ``model.predict_ab`` (network and decoding) at its working size.

    The batch dimension is dynamic; the spatial size is fixed at ``config.input_size``. The
    metadata records the family, config, sizes and, with ``source`` (the model's
    ``.safetensors``), that file's name and SHA-256.

    Raises:
        TypeError: the model is not a torch module (NumPy families run as they are).
        ImportError: the ``onnx`` package (train extra) is missing.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model {model.name!r} runs in NumPy, not torch; only torch models export to ONNX")
    try:
        import onnx
    except ImportError:
        raise ImportError("exporting needs the onnx package: pip install -e '.[train]' (or pip install onnx)") from None

    model = model.cpu().eval()
    size = int(model.config.input_size)
    example = torch.from_numpy(_test_lightness(size))
    with torch.inference_mode():
        output_size = tuple(model.predict_ab(example).shape[-2:])
    proto = onnx.load_from_string(_traced_onnx(model, example, opset))
    info = _export_info(model, size, output_size, source)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(info, sort_keys=True)
    proto.producer_name = "tinct"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _traced_onnx(model, example, opset: int) -> bytes:
    """ONNX bytes of ``model.predict_ab`` traced on ``example`` (float32 ``(1, 1, S, S)``
    lightness), with a dynamic batch dimension."""
    import torch

    class PredictAb(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, l):
            return self.inner.predict_ab(l)

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is the older one (torch.export's needs
        # onnxscript, not a dependency) and that shape arithmetic is traced as constants:
        # the spatial size is fixed by design, and the check below runs two batch sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            PredictAb(model).eval(), (example,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=opset, dynamo=False,
        )
    return buffer.getvalue()


def _export_info(model, size: int, output_size: tuple[int, ...], source: str | os.PathLike | None) -> dict[str, Any]:
    """The JSON an export carries in its metadata (``METADATA_KEY``)."""
    import torch

    from tinct import __version__

    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "model": model.name,
        "config": dataclasses.asdict(model.config),
        "input_size": size,
        "output_size": list(output_size),
        "source": Path(source).name if source else None,
        "source_sha256": sha256_file(source) if source else None,
        "tinct_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
    }


def agreement(model, onnx_path: str | os.PathLike, l: np.ndarray | None = None) -> float:
    """Largest ``|ab|`` difference (Lab units) between ``model.predict_ab`` in torch and the
    export at ``onnx_path``, on ``l (B, 1, S, S)`` (default: a photo-like batch of 3, which
    also exercises a batch size other than the one traced)."""
    exported = OnnxModel(onnx_path)
    if l is None:
        l = _test_lightness(exported.config.input_size, batch=3)
    return float(np.abs(exported.predict_ab(l) - torch_predict_ab(model, l)).max())
