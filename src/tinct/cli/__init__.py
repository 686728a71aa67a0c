"""The ``tinct`` command. Each subcommand lives in ``tinct/cli/<name>.py`` with
``add_parser(subparsers)`` (which sets ``func=run``) and ``run(args) -> int``; heavy imports
stay inside ``run`` so that ``tinct --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tinct import __version__

SUBCOMMANDS = ["colorize", "models", "train", "evaluate", "compare", "serve", "gradcheck"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinct", description="Bring black-and-white photos to colour.")
    parser.add_argument("--version", action="version", version=f"tinct {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"tinct.cli.{name}")
        except ModuleNotFoundError as exc:  # a subcommand not present in this build
            if exc.name != f"tinct.cli.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("tinct: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
