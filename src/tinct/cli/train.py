"""``tinct train``: train a registered model on photo folders into a resumable run folder."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from tinct.cli import USAGE_ERROR, CommandFailed
from tinct.errors import TinctError, one_line

EPILOG = """\
examples:
  tinct train --model tinctnet --data ~/photos --out runs/first
  tinct train --preset tinctnet --data ../shared/data/caltech101 ../shared/data/sun80 --out runs/v1
  tinct train --out runs/first --resume                 # after Ctrl-C, a crash or kill -9
  tinct train --init tinct-v1 --preset tinctnet --data ~/photos --out runs/mine --set train.lr=1e-4
                                                        # fine-tune the shipped model on your photos
  tinct train --model tinctnet --data ~/photos --out runs/quick --set train.epochs=2 \\
      --set model.width=8 --set data.size=64
  torchrun --nproc_per_node=2 -m tinct train --preset tinctnet --data ~/photos --out runs/ddp

--set takes dotted keys: train.<key> (see docs/training.md), model.<key> (the model's config)
and data.<key> (tinct.data.DataConfig); values are read as JSON when they parse.
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on your photos (resumable, torchrun-ready)",
        description="Train a registered model on photo folders. Every epoch writes a checkpoint, "
        "a sample grid and a metrics row; the run can be stopped at any moment and continued with --resume.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", metavar="NAME", help="registered model family (tinct models lists them)")
    p.add_argument(
        "--data", nargs="+", metavar="SOURCE", help="photo folders or kind:path sources (e.g. caltech101:DIR)"
    )
    p.add_argument("--out", metavar="DIR", help="run folder (new, empty, or with --resume / --overwrite)")
    p.add_argument("--preset", metavar="NAME", help="preset name (--list-presets) or a preset .json file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. train.lr=3e-4, model.width=16, data.size=96 (repeatable)",
    )
    p.add_argument(
        "--init",
        metavar="MODEL",
        help="fine-tune: start from shipped weights (tinct models), a checkpoint or a run folder; "
        "the model family and settings come from it",
    )
    p.add_argument("--epochs", type=int, metavar="N", help="shorthand for --set train.epochs=N")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run's files in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch only)")
    p.add_argument("--list-presets", action="store_true", help="list the shipped presets and exit")
    p.set_defaults(func=run)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return one_line(exc)


def _saved_config(out: Path) -> dict:
    config_file = out / "config.json"
    if config_file.is_file():
        return json.loads(config_file.read_text())
    from tinct.train.state import load_state

    return load_state(out / "state.pt")["config"]


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` asks. Errors reach :func:`tinct.cli.main` as one line: a bad request
    (:class:`~tinct.errors.TinctError`, status 2) is said once under torchrun; a failure while
    training (a full disk, an unreadable photo) is a :class:`~tinct.cli.CommandFailed` (status
    1, 2 for a :class:`TrainError`) that every process reports, as it may hit one only."""
    from tinct.train import ConfigError, TrainError, list_presets, load_preset, train

    if args.list_presets:
        for name in list_presets():
            description = load_preset(name).get("description", "")
            print(f"{name:24s} {description}")
        return 0
    out, run_config = _run_config(args)
    try:
        result = train(
            run_config,
            out,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=False if args.no_progress else None,
        )
    except (ConfigError, TrainError) as exc:
        raise CommandFailed(one_line(exc), USAGE_ERROR, every_process=True) from exc
    except (OSError, ValueError) as exc:
        # Data problems (missing folder, unreadable photo) and files that cannot be written
        # (a full disk) arrive as one-line errors (status 1, as before TinctError existed);
        # TINCT_DEBUG=1 shows the traceback instead.
        if os.environ.get("TINCT_DEBUG"):
            raise
        raise CommandFailed(_one_line(exc), 1, every_process=True) from exc
    if os.environ.get("RANK", "0") in ("", "0"):
        _print_result(out, result)
    return 0


def _run_config(args: argparse.Namespace):
    """``(run folder, RunConfig)`` from the arguments; TinctError (status 2) for a bad request,
    CommandFailed (status 1) for a file that cannot be read."""
    from tinct.train import check_run_dir, resolve_run_config

    if not args.out:
        raise TinctError("--out DIR is required (the run folder)")
    out = Path(args.out).expanduser()
    overrides = list(args.overrides)
    if args.init and args.resume:
        raise TinctError("--init starts a new run from other weights; --resume continues this one: pick one")
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    try:
        check_run_dir(out, args.resume, args.overwrite)
        base = _saved_config(out) if args.resume else None
        if base is None and not args.model and not args.preset and not args.init:
            raise TinctError("no model: pass --model NAME (tinct models lists them) or --preset NAME")
        return out, resolve_run_config(
            preset=args.preset, model=args.model, sources=args.data, overrides=overrides, base=base, init=args.init
        )
    except TinctError:
        raise
    except (OSError, ValueError) as exc:
        raise CommandFailed(str(exc)) from exc


def _print_result(out: Path, result) -> None:
    best = out / "best.safetensors"
    epochs = f"{result.epochs_done} epoch" + ("" if result.epochs_done == 1 else "s")
    best_loss = f", best val loss {result.best_val_loss:.4g}" if math.isfinite(result.best_val_loss) else ""
    stopped = f"; {result.stopped}" if result.stopped else ""
    steps = f", {result.global_step} steps" if result.global_step else ""
    print(f"tinct: {out}: {epochs}{steps}{best_loss}{stopped}", file=sys.stderr)
    if best.exists():
        print(f"tinct: colorize with: tinct colorize --model {best} PHOTO", file=sys.stderr)
