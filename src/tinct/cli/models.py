"""``tinct models``: registered model families and shipped weights."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("models", help="list model families and shipped weights")
    p.add_argument("checkpoint", nargs="?", help="show the description stored in this checkpoint, shipped weights or ONNX export")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinct.engine import export_path
    from tinct.models import DEFAULT_MODEL, list_models, model_class, read_checkpoint_info, shipped_models
    from tinct.models.checkpoint import resolve_model_path

    if args.checkpoint:
        from tinct.infer import model_errors

        with model_errors():
            if args.checkpoint.endswith(".onnx"):  # an export: what it was exported from
                from tinct.engine import OnnxModel

                info = OnnxModel(args.checkpoint).export_info
            else:
                info = read_checkpoint_info(resolve_model_path(args.checkpoint))
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0

    print("Model families (train with: tinct train --model NAME):")
    for name in list_models():
        cls = model_class(name)
        doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        summary = doc[0] if doc else ""
        print(f"  {name:<14} {cls.backend:<6} {summary}")
    print("\nShipped weights (use with: tinct colorize --model NAME; engine: onnx if exported, else torch):")
    shipped = shipped_models()
    if not shipped:
        print("  (none)")
    for name, path in shipped.items():
        info = read_checkpoint_info(path)
        size_mb = path.stat().st_size / 1e6
        engine = "onnx" if export_path(path).exists() else "torch"
        default = "  [default]" if name == DEFAULT_MODEL else ""
        print(f"  {name:<14} {info['model']:<10} {size_mb:5.1f} MB  {engine:<5}{default}")
    return 0
