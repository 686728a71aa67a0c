"""One error base, caught in one place: tinct.errors and tinct.cli.main."""

import argparse

import pytest

import tinct
from tinct import cli
from tinct.errors import DataError, ModelError, ModelNotFoundError, TinctError, one_line


def _errors_in_the_code() -> list[type]:
    from tinct.data.download import ChecksumError, DownloadError
    from tinct.evaluate import EvaluationError
    from tinct.evaluate.report import ReportExistsError
    from tinct.io import ImageReadError, ImageTooLargeError
    from tinct.metrics.weights import WeightsError
    from tinct.models.registry import UnknownModelError
    from tinct.train import ConfigError, TrainError
    from tinct.video.io import VideoReadError

    return [ConfigError, TrainError, EvaluationError, WeightsError, UnknownModelError, DownloadError,
            ChecksumError, ImageReadError, ImageTooLargeError, VideoReadError, DataError, ReportExistsError]  # fmt: skip


def test_user_facing_errors_share_the_base_and_keep_their_builtin_type():
    from tinct.batch import BatchError, InputNotFoundError

    builtin = {"UnknownModelError": KeyError, "DownloadError": RuntimeError, "ChecksumError": RuntimeError,
               "InputNotFoundError": FileNotFoundError, "ModelNotFoundError": FileNotFoundError,
               "ReportExistsError": FileExistsError}  # fmt: skip
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
        (["evaluate"], "tinct evaluate: give --model M --data DIR, or --pred DIR --gt DIR"),
        (["compare", "--models", "m", "--data", str(tmp_path), "--limit", "0"], "tinct compare: --limit must be >= 1, got 0"),
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


def test_a_bad_data_source_to_evaluate_is_one_line_naming_it(tmp_path, tiny_checkpoint, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    arrays = tmp_path / "kaggle"
    (arrays / "ab").mkdir(parents=True)
    (arrays / "gray_scale.npy").write_bytes(b"not an array")
    (arrays / "ab" / "ab1.npy").write_bytes(b"not an array")
    sources = {  # --data -> what the one line names
        "cifar100:": "cifar100:",
        f"caltech101:{tmp_path / 'missing'}": str(tmp_path / "missing"),
        f"folder:{empty}:crops=0": f"folder:{empty}:crops=0",
        f"coco:{empty}:val=3": f"coco:{empty}:val=3",
        f"coco:{empty}": f"coco:{empty}",
        f"lab-arrays:{arrays}": str(arrays / "gray_scale.npy"),
    }
    out = tmp_path / "report"
    for data, named in sources.items():
        argv = ["evaluate", "--model", str(tiny_checkpoint), "--data", data, "--out", str(out), "--no-progress"]
        assert cli.main(argv) == 1, data  # a refused evaluation: status 1, said by cli.main
        captured = capsys.readouterr()
        err = captured.err
        assert err.count("\n") == 1 and err.startswith("tinct evaluate: ") and named in err, err
        assert captured.out == ""
    assert not out.exists()


def test_tinct_data_reports_unusable_data_through_main(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = f"folder:{empty}:crops=0"
    cases = [  # (argv, status, the one line): DataError (2), a missing folder (CommandFailed, 1), all from main
        (["data", "manifest", bad], 2, f"tinct data: {bad}: crops must be >= 1, got 0"),
        (["data", "manifest", str(empty)], 2, f"tinct data: {empty}: no images found under {empty}"),
        (["data", "download", "cifar1000", str(tmp_path)], 2, "tinct data: unknown dataset 'cifar1000'; known: "),
        (["data", "manifest", str(tmp_path / "missing")], 1, f"tinct data: {tmp_path / 'missing'} is not a folder\n"),
    ]
    for argv, status, line in cases:
        assert cli.main(argv) == status, argv
        captured = capsys.readouterr()
        assert captured.err.startswith(line) and captured.err.count("\n") == 1, (argv, captured.err)
        assert captured.out == ""
