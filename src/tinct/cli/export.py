"""``tinct export``: write a model's whole ``predict_ab`` (network and decoding) to ONNX.

ONNX Runtime then colorizes with it (the default engine; see :mod:`tinct.engine`). Shipped
weights are exported beside themselves (``tinct/weights/NAME.onnx``) and the export's
SHA-256 is recorded in ``SHA256SUMS``: part of the release recipe, run after any change to
the weights. A checkpoint is exported beside itself (``best.onnx`` for ``best.safetensors``)
unless ``-o`` says where.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TOLERANCE = 1e-3  # largest |ab| difference from torch accepted (Lab units)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX for the fast inference engine",
        description=(
            "Export a model's predict_ab (network and decoding, at its working size, any batch) "
            "to ONNX, check that ONNX Runtime agrees with torch, and write it beside the weights."
        ),
    )
    p.add_argument("model", help="shipped weights name or checkpoint path (.safetensors or run folder)")
    p.add_argument("-o", "--output", help="ONNX file to write (default: beside the weights, NAME.onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from tinct.engine import agreement, export_onnx, export_path
    from tinct.errors import TinctError
    from tinct.infer import model_errors
    from tinct.io import atomic_file
    from tinct.models import load, resolve_model_path
    from tinct.models.checkpoint import WEIGHTS_DIR, record_shipped_sum

    with model_errors():
        source = resolve_model_path(args.model)
        model, _ = load(source)
    target = Path(args.output) if args.output else export_path(source)
    if target.suffix != ".onnx":
        raise TinctError(f"{target}: the output must be an .onnx file")
    try:
        payload = export_onnx(model, source, opset=args.opset)
    except (TypeError, ImportError) as exc:
        raise TinctError(f"{source}: {exc}") from exc
    except Exception as exc:  # the exporter's many error types: one line, naming the model
        raise TinctError(f"{source}: torch.onnx could not export {model.name!r} ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc

    with tempfile.TemporaryDirectory() as tmp:  # check before anything is replaced
        trial = Path(tmp) / "trial.onnx"
        trial.write_bytes(payload)
        difference = agreement(model, trial)
    if difference > TOLERANCE:
        raise TinctError(f"{source}: ONNX Runtime and torch differ by {difference:.2g} in ab (more than {TOLERANCE}); nothing written")
    with atomic_file(target) as handle:
        handle.write(payload)
    note = ""
    if target.resolve().parent == WEIGHTS_DIR.resolve():
        digest = record_shipped_sum(target)
        note = f"; SHA256SUMS: {digest[:12]}..."
    size = model.config.input_size
    print(
        f"wrote {target} ({len(payload) / 1e6:.1f} MB; {model.name}, input (B, 1, {size}, {size}); "
        f"max |ab| difference from torch {difference:.1e}{note})",
        file=sys.stderr,
    )
    print(target)
    return 0
