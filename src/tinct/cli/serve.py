"""``tinct serve``: a local web page for colorizing photos in the browser."""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
import threading


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="start a local web page for colorizing photos",
        description=(
            "Start a web page on this computer: drop, paste or upload gray photos, compare each "
            "result with its input and download it at full resolution. Nothing is fetched from "
            "the internet and photos never leave the machine. Stop with Ctrl+C."
        ),
    )
    p.add_argument(
        "-m", "--model", action="append", dest="models", metavar="MODEL",
        help="shipped weights name or checkpoint path; repeat to offer several (default: the shipped model)",
    )
    p.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default: %(default)s, this computer only; 0.0.0.0 exposes it to the network)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default: %(default)s)")
    p.add_argument("--max-megapixels", type=float, default=40.0, metavar="MP",
                   help="largest photo in megapixels (default: %(default)g)")
    p.add_argument("--max-mb", type=float, default=30.0, metavar="MB",
                   help="largest photo file in MB (default: %(default)g)")
    p.add_argument("--max-files", type=int, default=20, metavar="N",
                   help="most photos per request (default: %(default)s)")
    p.add_argument("--examples", metavar="FOLDER", default=None,
                   help="folder of example photos (default: the ones that ship with tinct)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads (default: all available)")
    p.set_defaults(func=run)


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


class _Background:
    """``function(*args, **kwargs)`` running in a helper thread; :meth:`result` waits for it
    and returns its value or raises its exception."""

    def __init__(self, function, *args, **kwargs):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(function, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, function, args, kwargs):
        try:
            self._value = function(*args, **kwargs)
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def run(args: argparse.Namespace) -> int:
    from tinct.errors import TinctError

    if not 1 <= args.port <= 65535:
        raise TinctError(f"--port must be in 1..65535, got {args.port}")
    if args.threads is not None and args.threads < 1:
        raise TinctError(f"--threads must be >= 1, got {args.threads}")
    from tinct.app import Limits

    try:
        limits = Limits(max_megapixels=args.max_megapixels, max_mb=args.max_mb, max_files=args.max_files)
    except ValueError as exc:  # the limits' own names, as options
        raise TinctError(str(exc).replace("max_", "--max-").replace("_", "-", 1)) from exc
    try:
        if not _port_free(args.host, args.port):
            raise TinctError(f"port {args.port} on {args.host} is in use; pick another with --port")
    except OSError as exc:
        raise TinctError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from exc

    from tinct.app import build_app, find_examples, launch, load_colorizers, offline_gradio, warm_up

    examples = find_examples(args.examples)
    if args.examples is not None and not examples:
        raise TinctError(f"{args.examples}: no example photos there")
    # The models load in a helper thread while Gradio is imported here: the two are the
    # bulk of the start-up, and they overlap.
    loading = _Background(load_colorizers, args.models or ["default"], threads=args.threads)
    offline_gradio()
    colorizers = loading.result()  # a model that cannot be opened: a TinctError, printed by tinct.cli.main

    app = build_app(colorizers, limits, examples)
    try:
        _, local_url, _ = launch(app, host=args.host, port=args.port, block=False)
    except OSError as exc:
        app.tinct_page.workspace.remove()
        raise TinctError(f"cannot start the server on {args.host}:{args.port} ({exc})") from exc
    url = local_url or f"http://{args.host}:{args.port}/"
    print(f"tinct serve: open {url} in a browser (models: {', '.join(colorizers)}; Ctrl+C stops)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tinct serve: listening on {args.host}: other computers on the network can use this page",
              file=sys.stderr, flush=True)
    # `kill` (SIGTERM) should stop the server as cleanly as Ctrl+C: close it, delete results.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    # In the background: the first request runs warm, and its progress can say from the
    # start how long it will take.
    threading.Thread(target=warm_up, args=(app,), name="tinct-warm-up", daemon=True).start()
    try:
        app.block_thread()
    finally:
        app.close()
        app.tinct_page.workspace.remove()
    return 0
