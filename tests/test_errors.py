"""One error base, caught in one place: tinct.errors and tinct.cli.main."""

import argparse

import pytest

import tinct
from tinct import cli
from tinct.errors import ModelError, ModelNotFoundError, TinctError, one_line


def _errors_in_the_code() -> list[type]:
    from tinct.data.download import ChecksumError, DownloadError
    from tinct.evaluate import EvaluationError
    from tinct.io import ImageReadError, ImageTooLargeError
    from tinct.metrics.weights import WeightsError
    from tinct.models.registry import UnknownModelError
    from tinct.train import ConfigError, TrainError
    from tinct.video.io import VideoReadError

    return [ConfigError, TrainError, EvaluationError, WeightsError, UnknownModelError, DownloadError,
            ChecksumError, ImageReadError, ImageTooLargeError, VideoReadError]  # fmt: skip


def test_user_facing_errors_share_the_base_and_keep_their_builtin_type():
    from tinct.batch import BatchError, InputNotFoundError

    builtin = {"UnknownModelError": KeyError, "DownloadError": RuntimeError, "ChecksumError": RuntimeError,
               "InputNotFoundError": FileNotFoundError, "ModelNotFoundError": FileNotFoundError}  # fmt: skip
    for cls in [*_errors_in_the_code(), BatchError, InputNotFoundError, ModelError, ModelNotFoundError]:
        assert issubclass(cls, TinctError), cls
        assert issubclass(cls, builtin.get(cls.__name__, ValueError)), cls
    assert tinct.TinctError is TinctError


def test_one_line_drops_keyerror_quotes_and_later_lines():
    assert one_line(KeyError("unknown model 'x'")) == "unknown model 'x'"
    assert one_line(TinctError("first\nsecond")) == "first"
    assert one_line(TinctError()) == "TinctError"


class _Raising:
    """A fake subcommand module whose run raises what it is given."""

    def __init__(self, name: str, exc: BaseException):
        self.name, self.exc = name, exc

    def add_parser(self, subparsers) -> None:
        subparsers.add_parser(self.name).set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        raise self.exc


@pytest.fixture
def raising(monkeypatch):
    """Make ``tinct <name>`` raise ``exc`` (the real command's parser is replaced)."""

    def install(name: str, exc: BaseException) -> None:
        fake = _Raising(name, exc)
        real = cli.importlib.import_module

        def import_module(module_name, *args):
            return fake if module_name == f"tinct.cli.{name}" else real(module_name, *args)

        monkeypatch.setattr(cli.importlib, "import_module", import_module)

    return install


@pytest.mark.parametrize("command", sorted(set(cli.SUBCOMMANDS) - {"tune"}))
def test_a_tinct_error_from_any_command_is_one_line_and_status_2(command, raising, capsys):
    raising(command, ModelError("runs/x/best.safetensors: checkpoint format version 9\nsecond line"))
    assert cli.main([command]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"tinct {command}: runs/x/best.safetensors: checkpoint format version 9\n"
    assert captured.out == ""


@pytest.mark.parametrize("exc", [KeyError("width"), ValueError("a bug"), TypeError("a bug")])
def test_an_unexpected_error_is_not_swallowed(exc, raising, capsys):
    raising("colorize", exc)
    with pytest.raises(type(exc)):
        cli.main(["colorize"])
    assert capsys.readouterr().err == ""


def test_real_commands_report_tinct_errors_through_main(tmp_path, capsys):
    # Each of these raised its own catch list's types before; now one line from main.
    missing = tmp_path / "missing.safetensors"
    cases = [
        (["colorize", str(tmp_path / "nope.jpg")], f"tinct colorize: {tmp_path / 'nope.jpg'}: no such file or folder"),
        (["colorize", "--batch-size", "0", str(tmp_path)], "tinct colorize: --batch-size must be >= 1, got 0"),
        (["colorize"], "tinct colorize: give photos, folders or glob patterns to colorize (or --examples)"),
        (["export", str(missing)], f"tinct export: {missing}: no such checkpoint"),
        (["models", "tinctnte"], "tinct models: unknown model 'tinctnte'"),
    ]
    for argv, expected in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(expected) and err.count("\n") == 1, (argv, err)


def test_colorizer_errors_are_model_errors(tmp_path):
    from tinct.infer import Colorizer

    with pytest.raises(ModelNotFoundError, match="no such checkpoint"):
        Colorizer(tmp_path / "missing.safetensors")
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(ModelError, match="damaged.safetensors"):
        Colorizer(damaged)
    with pytest.raises(FileNotFoundError):  # library code catching the built-in types still works
        Colorizer(tmp_path / "missing.safetensors")
