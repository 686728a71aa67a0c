"""The ``tinct`` command. Each subcommand lives in ``tinct/cli/<name>.py`` with
``add_parser(subparsers)`` (which sets ``func=run``) and ``run(args) -> int``.

Start-up is kept short: this module and the subcommand modules import only the standard
library at module level (``import tinct`` itself is light), heavy imports stay inside
``run``, and only the subcommand being run is imported with its arguments; the others are
listed from :data:`SUBCOMMANDS` for ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from tinct import __version__
from tinct.errors import TinctError, one_line

USAGE_ERROR = 2  # the exit status of a TinctError: the command could not do what was asked


class CommandFailed(TinctError):
    """A command stopped part-way for a reason that is not a bad request (a full disk, an
    unreadable photo in the middle of a training run): exit ``status`` (1 unless given), and
    printed by every process of a torchrun job when ``every_process`` (the failure may hit one
    process only; a bad request is the same in all of them and is printed once)."""

    def __init__(self, message: str, status: int = 1, every_process: bool = False):
        super().__init__(message)
        self.status = status
        self.every_process = every_process

# Name -> one-line help shown by `tinct --help` (each module's add_parser gives the same).
SUBCOMMANDS = {
    "colorize": "colorize photos, folders or globs",
    "models": "list model families and shipped weights",
    "export": "export a model to ONNX for the fast inference engine",
    "data": "list and download datasets, build the tile cache, print a data manifest",
    "train": "train a model on your photos (resumable, torchrun-ready)",
    "evaluate": "score a model or a folder of outputs on held-out truths (with the gray baseline)",
    "compare": "leaderboard of several models (and the gray baseline) on the same held-out images",
    "tune": "choose a bins-head checkpoint's decoding (T, beta, gates, size) on its held-out photos",
    "serve": "start a local web page for colorizing photos",
    "gradcheck": "check the NumPy network's gradients and the XOR test",
}


# Equal to tinct.hints.REFERENCE_MATCHES and REFERENCE_MATCH (a test checks); not imported, so
# that parsing the command line does not import NumPy.
REFERENCE_MATCHES = ("histogram", "colorfulness", "colors")
REFERENCE_MATCH = "colors"


def add_reference_match(group) -> None:
    """``--reference-match`` (what a reference sets besides its histogram) and its shorthand
    ``--match-colorfulness``, both into ``args.reference_match`` (None: the default)."""
    group.add_argument("--reference-match", choices=REFERENCE_MATCHES, default=None,
                       help="with --reference, what else it sets: histogram (only the colour histogram the "
                       "network takes), colorfulness (and its colourfulness), colors (and its colours' mean "
                       f"and spread, then its colourfulness; docs/hints.md) (default: {REFERENCE_MATCH})")
    group.add_argument("--match-colorfulness", action="store_const", const="colorfulness", dest="reference_match",
                       help="shorthand for --reference-match colorfulness")


def reference_match_problem(args: argparse.Namespace, reference: str) -> str | None:
    """The one-line complaint when ``--reference-match`` comes without ``--reference``."""
    if args.reference_match is not None and not args.reference:
        return f"--reference-match/--match-colorfulness goes with --reference {reference}"
    return None


def _requested(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first argument that is not an option)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in SUBCOMMANDS else None
    return None


def _add_subcommand(subparsers, name: str) -> bool:
    try:
        module = importlib.import_module(f"tinct.cli.{name}")
    except ModuleNotFoundError as exc:  # a subcommand not present in this build
        if exc.name != f"tinct.cli.{name}":
            raise
        return False
    module.add_parser(subparsers)
    return True


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the subcommand it names is imported and given its
    arguments (the rest are listed by name and help), without it every subcommand is built."""
    parser = argparse.ArgumentParser(prog="tinct", description="Bring black-and-white photos to colour.")
    parser.add_argument("--version", action="version", version=f"tinct {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = _requested(argv) if argv is not None else None
    for name, summary in SUBCOMMANDS.items():
        if argv is None or name == wanted:
            _add_subcommand(subparsers, name)
        else:
            subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # tinct's own notes (e.g. "running in torch") read as one line, like its errors.
    if issubclass(category, UserWarning) and "tinct" in filename.replace("\\", "/").split("/"):
        print(f"tinct: {message}", file=sys.stderr if file is None else file)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def _report(command: str, exc: TinctError) -> int:
    """Print ``exc`` as one line (once under torchrun, see :func:`main`); its exit status."""
    failed = exc if isinstance(exc, CommandFailed) else None
    rank = os.environ.get("RANK", "") or "0"
    if rank == "0":
        print(f"tinct {command}: {one_line(exc)}", file=sys.stderr)
    elif failed is not None and failed.every_process:
        print(f"tinct {command}: [process {rank}] {one_line(exc)}", file=sys.stderr)
    return failed.status if failed is not None else USAGE_ERROR


def main(argv: list[str] | None = None) -> int:
    """Run one ``tinct`` command; returns its exit status.

    This is the one place where errors become exit statuses: a
    :class:`~tinct.errors.TinctError` from any command (an unknown model, a missing input, a
    bad setting) is printed as ``tinct <command>: <message>`` on one line and gives status 2
    (:class:`CommandFailed`: its own status). Under torchrun (``RANK`` set) only process 0
    prints it, unless the failure is one process's own (``CommandFailed.every_process``: the
    other processes print ``tinct <command>: [process N] <message>``). Ctrl-C gives 130. Any other exception is a bug and keeps its traceback. Commands return
    1 themselves when some items failed (one photo of a folder) and the others were done.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        return int(args.func(args) or 0)
    except TinctError as exc:
        return _report(args.command, exc)
    except KeyboardInterrupt:
        print("tinct: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = _default_showwarning


if __name__ == "__main__":
    sys.exit(main())
