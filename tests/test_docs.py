"""Every shell command in README.md and docs/*.md works as written.

Each fenced ``bash``/``sh``/``shell`` block runs from the top, command by command, in a fresh
copy of the repository root's surroundings (a sandbox holding ``.venv`` and the files the
commands name, ``~`` and ``../shared/data`` filled with a few small photos). Commands run
with small settings: :data:`SMALL` is the one place that says which are added or
substituted. A command that cannot run here is listed in :data:`SKIPPED` with the reason;
anything else that the docs gain must run, or the test fails and says so.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_sky_grass_photos

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}

# (document, regular expression matched against the whole command) -> why it is not run here.
SKIPPED = {
    ("README.md", r"^make demo\b"): "sets up .venv from the lock file (network); its colorize step is run below",
    ("README.md", r"^make test\b"): "runs the whole test suite, this test among it",
    ("README.md", r"^\.venv/bin/pip install\b"): "installs packages into the venv (network)",
    ("README.md", r"^\.venv/bin/tinct serve\b"): "serves until stopped; tests/test_app_browser.py starts it and drives it",
    ("docs/training.md", r"--nnodes=2 .*HOST"): "a template for two machines (HOST, `...`)",
    ("docs/leaderboard.md", r"."): "the leaderboard's own recipe (bench/leaderboard.sh): 13 trainings and a "
    "compare of 19 systems, half an hour or more on 2 cores; figures on the page",
    ("docs/video.md", r"bench/bench_video\.py"): "renders the benchmark clips and 2-minute clips (many minutes); "
    "figures on the page",
}

# Small settings, in one place. "train" is added to `tinct train` commands (and torchrun's);
# "model" to those that start a new run of a family from its defaults or a preset;
# "substitute" replaces text in a command before it runs.
SMALL = {
    "train": ["train.epochs=1", "train.max_steps_per_epoch=1", "train.batch_size=4", "train.max_val_images=2",
              "train.samples=1", "train.tensorboard=false", "train.threads=1", "train.statistics_pixels=2000"],
    "model": {"unet": ["model.width=2"], "tinctnet": ["model.width=4"], "window-mlp": ["model.hidden=[2]"]},
    "substitute": {"--epochs 40": "--epochs 2", "--clips 8 --frames 48": "--clips 2 --frames 6",
                   "--clips 4 --frames 48": "--clips 1 --frames 4"},
}  # fmt: skip


@dataclass
class Block:
    document: str  # path relative to the repository
    line: int  # of the opening fence
    commands: list[str]


def _commands(body: str) -> list[str]:
    """Shell commands of a block: continuation lines joined, comment-only lines dropped."""
    commands, current = [], ""
    for line in body.splitlines():
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip() and not current.strip().startswith("#"):
            commands.append(" ".join(current.split()))
        current = ""
    return commands


def shell_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.S | re.M):
        if match.group(1) in SHELL_LANGUAGES:
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(Block(path.relative_to(REPO).as_posix(), line, _commands(match.group(2))))
    return blocks


ALL_BLOCKS = [block for doc in DOCS for block in shell_blocks(doc)]


def skip_reason(document: str, command: str) -> str | None:
    for (doc, pattern), reason in SKIPPED.items():
        if doc == document and re.search(pattern, command):
            return reason
    return None


# ---------------------------------------------------------------------------------------------
# the sandbox: what the commands expect to find


def _colour_photo(path: Path, seed: int, size: tuple[int, int] = (48, 64)) -> Path:
    rng = np.random.default_rng(seed)
    height, width = size
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    start, end = rng.uniform(30, 225, (2, 3))
    rgb = start * (1 - x[..., None]) + end * x[..., None] + 20 * y[..., None]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


def _gray_photo(path: Path, seed: int) -> Path:
    rgb = np.asarray(Image.open(_colour_photo(path, seed)).convert("L"))
    Image.fromarray(rgb).save(path)
    return path


def _tiny_checkpoint(path: Path) -> Path:
    from tinct.models import create_model, save_checkpoint

    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(path, create_model("tinctnet", width=4, input_size=32))


def make_sandbox(root: Path) -> tuple[Path, Path]:
    """(repository-like working folder, home folder), with every file the docs' commands name."""
    from test_numpy_models import write_cifar

    work, home, shared = root / "repo", root / "home", root / "shared" / "data"
    work.mkdir(parents=True)
    (work / ".venv").symlink_to(REPO / ".venv", target_is_directory=True)
    _gray_photo(work / "old.jpg", 1)
    (work / "old.hints.json").write_text('{"hints": [{"x": 3, "y": 4, "color": "#3a6fc4"}, {"x": 9, "y": 2, "color": [200, 40, 35]}]}')
    _gray_photo(work / "a.png", 2)
    _gray_photo(work / "box" / "x" / "y.tif", 3)
    for i in range(3):
        _gray_photo(work / "scans" / ("album" if i else "") / f"scan{i}.png", 10 + i)
    (work / "scans" / "linked.png").symlink_to(_gray_photo(root / "elsewhere" / "linked.png", 20))
    for name in ("a", "b", "c"):
        _colour_photo(shared / "cbsd68" / f"{name}.png", ord(name))
        for folder in ("truths", "their_outputs", "outputs"):
            _colour_photo(work / folder / f"{name}.png", ord(name) + 7)
    for i, folder in enumerate(("caltech101/cat", "caltech101/dog", "sun80", "urban100")):
        make_sky_grass_photos(shared / folder, 4, seed=i)
    make_sky_grass_photos(home / "photos", 12)
    write_cifar(home / "cifar-100-python", train=14, test=4)
    for run in ("a", "unet"):
        _tiny_checkpoint(work / "runs" / run / "best.safetensors")
    return work, home


# ---------------------------------------------------------------------------------------------
# running one command


def _family(args: list[str]) -> str | None:
    from tinct.train import load_preset

    if "--model" in args:
        return args[args.index("--model") + 1]
    if "--preset" in args:
        return load_preset(args[args.index("--preset") + 1]).get("model")
    return None


def small_settings(args: list[str]) -> list[str]:
    """What :data:`SMALL` adds to a ``tinct train`` command (``args`` after ``train``)."""
    sets = list(SMALL["train"])
    if "--resume" not in args and "--init" not in args:
        sets += SMALL["model"].get(_family(args), [])
    return [part for item in sets for part in ("--set", item)]


def _trains(args: list[str]) -> bool:
    """``tinct train ...`` or ``torchrun ... -m tinct train ...``."""
    module = args.index("-m") + 1 if "-m" in args else None
    return args[:1] == ["train"] or (module is not None and args[module : module + 2] == ["tinct", "train"])


def _arguments(command: str, home: Path) -> list[str]:
    for text, replacement in SMALL["substitute"].items():
        command = command.replace(text, replacement)
    assert "$" not in command and "`" not in command, f"{command}: needs a shell; list it in SKIPPED"
    # The shell expands ~ at the start of a word; tinct expands the rest (e.g. cifar100:~/...).
    words = shlex.split(command, comments=True)
    return [str(home) + arg[1:] if arg == "~" or arg.startswith("~/") else arg for arg in words]


def run_command(command: str, work: Path, home: Path, capsys) -> tuple[int, str]:
    """Run one documented command in ``work``; returns (exit status, what it printed)."""
    from tinct.cli import main

    program, *args = _arguments(command, home)
    if not (work / program).is_file() or not os.access(work / program, os.X_OK):
        return 127, f"{program}: not found from the repository root"
    if _trains(args):
        args += small_settings(args)
    if program == ".venv/bin/tinct":  # the console script calls tinct.cli:main; run it in-process
        try:
            status = main(args)
        except SystemExit as exc:  # argparse's usage errors
            status = exc.code
        printed = capsys.readouterr()
        return status, printed.out + printed.err
    env = {**os.environ, "HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([program, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def _block_id(block: Block) -> str:
    return f"{block.document}:{block.line}"


_PASSED: set[str] = set()  # commands that already worked in this session


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=_block_id)
def test_documented_shell_commands_work_as_written(block, tmp_path, monkeypatch, capsys):
    runnable = [c for c in block.commands if not skip_reason(block.document, c)]
    if not runnable:
        pytest.skip(f"every command of this block is in SKIPPED: {skip_reason(block.document, block.commands[0])}")
    if runnable[-1] in _PASSED:  # the same command (torchrun's, thrice) ran in another block; nothing needs it here
        runnable.pop()
    work, home = make_sandbox(tmp_path)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    for command in runnable:
        status, printed = run_command(command, work, home, capsys)
        assert status == 0, f"{block.document}:{block.line}: `{command}` exited {status}:\n{printed[-3000:]}"
        _PASSED.add(command)


def test_the_docs_have_shell_commands_and_every_skip_is_still_needed():
    commands = [(block.document, command) for block in ALL_BLOCKS for command in block.commands]
    assert len(commands) > 20
    for (document, pattern), reason in SKIPPED.items():
        assert any(doc == document and re.search(pattern, c) for doc, c in commands), (document, pattern, reason)


def test_commands_name_the_venv_programs_by_path():
    # `tinct`, `torchrun`, `python` or `pip` alone are found only inside an activated venv.
    for block in ALL_BLOCKS:
        for command in block.commands:
            program = shlex.split(command, comments=True)[0]
            if Path(program).name in ("tinct", "torchrun", "python", "python3", "pip", "tensorboard"):
                assert program.startswith(".venv/bin/"), f"{block.document}:{block.line}: {command}"


def test_web_api_example_names_a_model_a_plain_tinct_serve_offers():
    from tinct.app import load_colorizers

    text = (REPO / "docs" / "web.md").read_text(encoding="utf-8")
    example = re.search(r'predict\(\[\{"image": handle_file\("a\.jpg"\)\}\],\s*"([^"]+)", "PNG"', text)
    assert example, "docs/web.md: the gradio_client example is gone"
    assert example.group(1) in load_colorizers(["default"], threads=1)

