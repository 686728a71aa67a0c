"""tinct evaluate / tinct compare end to end on tiny generated images."""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinct import metrics
from tinct.cli import compare as compare_cli
from tinct.cli import evaluate as evaluate_cli
from tinct.color import cielab_lightness, rgb_to_lab
from tinct.evaluate import BASELINE_NAME, gray_baseline
from tinct.infer import Colorizer
from tinct.io import Photo, read_rgb
from tinct.models import create_model, save_checkpoint

HEIGHT, WIDTH = 32, 40


def _colour_image(seed: int) -> np.ndarray:
    """A smooth, colourful uint8 image: two colour gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH] / np.array([HEIGHT, WIDTH])[:, None, None]
    start, end, across = rng.uniform(0, 255, (3, 3))
    image = start * (1 - x[..., None]) + end * x[..., None] + (across - 128) * y[..., None] * 0.5
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture()
def folders(tmp_path):
    """truth/ (3 PNGs, one in a subfolder, one without output) and pred/ (lossless BMP/PNG)."""
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    rng = np.random.default_rng(7)
    for i, name in enumerate(["a", "b", "sub/c"]):
        image = _colour_image(i)
        _save(truth / f"{name}.png", image)
        noisy = np.clip(image.astype(int) + rng.integers(-25, 26, image.shape), 0, 255).astype(np.uint8)
        _save(pred / f"{name}.{'bmp' if i == 0 else 'png'}", noisy)  # extension ignored when matching
    _save(truth / "lonely.png", _colour_image(9))  # no output: reported, not scored
    _save(pred / "extra.png", _colour_image(10))  # no truth: reported, not scored
    return truth, pred


def _checkpoint(path: Path, seed: int = 0, **extra) -> Path:
    torch.manual_seed(seed)
    model = create_model("tinctnet", width=4, input_size=32)
    return save_checkpoint(path, model, extra=extra or None)


def cli(module, argv: list[str]) -> int:
    """Run one subcommand through its own parser (as ``tinct`` would)."""
    parser = argparse.ArgumentParser(prog="tinct")
    module.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def fails(argv: list[str], capsys) -> tuple[int, str]:
    """Run ``tinct`` through :func:`tinct.cli.main`, where errors become one printed line:
    ``(exit status, that stderr line)``; anything else on stderr fails the test."""
    from tinct.cli import main

    capsys.readouterr()  # what earlier commands printed
    status = main(argv)
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.endswith("\n") and "Traceback" not in err, err
    return status, err.strip()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_evaluate_pred_gt_end_to_end(folders, tmp_path, capsys):
    truth, pred = folders
    out = tmp_path / "report"
    assert cli(evaluate_cli, ["evaluate", "--pred", str(pred), "--gt", str(truth), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr()
    for name in ("index.html", "metrics.csv", "summary.json", "histograms.png"):
        assert (out / name).is_file(), name
    assert len(list((out / "comparisons").glob("*.png"))) == 3

    rows = _read_csv(out / "metrics.csv")
    assert {r["image"] for r in rows} == {"a", "b", "sub/c"}
    assert {r["system"] for r in rows} == {"pred", BASELINE_NAME}
    direct = {}
    for row in rows:
        truth_rgb = read_rgb(truth / f"{row['image']}.png")
        pred_path = next(pred.glob(f"{row['image']}.*"))
        output = read_rgb(pred_path) if row["system"] == "pred" else gray_baseline(truth_rgb)
        expected = {
            "psnr": metrics.psnr(output, truth_rgb),
            "ssim": metrics.ssim(output, truth_rgb),
            "ciede2000": metrics.ciede2000(output, truth_rgb),
            "colorfulness": metrics.colorfulness(output),
            "ab_auc": metrics.ab_auc(output, truth_rgb),
            "snr_g": float(metrics.channel_snr(output, truth_rgb)[1]),
        }
        for key, value in expected.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-9), (row["image"], row["system"], key)
        assert float(row["truth_colorfulness"]) == pytest.approx(metrics.colorfulness(truth_rgb))
        direct.setdefault(row["system"], []).append(expected)

    summary = json.loads((out / "summary.json").read_text())
    systems = {s["name"]: s for s in summary["systems"]}
    assert list(systems) == ["pred", BASELINE_NAME]
    for name, values in direct.items():
        for key in ("psnr", "ssim", "ciede2000", "colorfulness"):
            assert systems[name]["per_image"][key]["mean"] == pytest.approx(np.mean([v[key] for v in values]))
    truths_cf = [metrics.colorfulness(read_rgb(p)) for p in sorted(truth.glob("**/*.png")) if p.stem != "lonely"]
    preds_cf = [v["colorfulness"] for v in direct["pred"]]
    assert systems["pred"]["set"]["delta_colorfulness"] == pytest.approx(abs(np.mean(preds_cf) - np.mean(truths_cf)))
    assert summary["unmatched"] == {"predictions": ["extra.png"], "ground_truth": ["lonely.png"]}

    # the printed table shows both rows with enough digits for a reviewer's tolerance
    psnr_mean = np.mean([v["psnr"] for v in direct["pred"]])
    assert re.search(rf"PSNR \(dB\)\s+higher\s+pred\s+{psnr_mean:.3f}", printed.out)
    assert re.search(rf"\n\s+{re.escape(BASELINE_NAME)}\s+\d", printed.out)
    assert "extra.png" in printed.err and "lonely.png" in printed.err

    page = (out / "index.html").read_text()
    assert "gray baseline" in page and "http" not in page.replace("http-equiv", "")
    for link in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert (out / link).is_file(), link


def test_evaluate_refuses_to_overwrite_and_reports_no_match(folders, tmp_path, capsys):
    truth, pred = folders
    out = tmp_path / "existing"
    out.mkdir()
    status, line = fails(["evaluate", "--pred", str(pred), "--gt", str(truth), "--out", str(out)], capsys)
    assert status == 1
    assert line == f"tinct evaluate: {out}: already exists; reports are never overwritten (choose another --out)"
    empty = tmp_path / "empty"
    _save(empty / "zzz.png", _colour_image(3))
    status, line = fails(["evaluate", "--pred", str(empty), "--gt", str(truth), "--out", str(tmp_path / "r")], capsys)
    assert status == 1 and line.startswith(f"tinct evaluate: {empty}: no output matches a file of {truth}"), line
    assert not (tmp_path / "r").exists()


def test_evaluate_size_mismatch_names_the_file_unless_resize(folders, tmp_path, capsys):
    truth, pred = folders
    small = np.asarray(Image.open(pred / "b.png").resize((20, 16)))
    _save(pred / "b.png", small)
    status, line = fails(["evaluate", "--pred", str(pred), "--gt", str(truth), "--out", str(tmp_path / "r1")], capsys)
    assert status == 1 and line.startswith(f"tinct evaluate: {pred / 'b.png'}: 20x16 px") and "--resize" in line, line
    argv = ["evaluate", "--pred", str(pred), "--gt", str(truth), "--out", str(tmp_path / "r2"), "--resize", "--no-progress"]
    assert cli(evaluate_cli, argv) == 0
    rows = {(r["image"], r["system"]): r for r in _read_csv(tmp_path / "r2" / "metrics.csv")}
    truth_b = read_rgb(truth / "b.png")
    resized = np.asarray(Image.fromarray(small).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC))
    assert float(rows[("b", "pred")]["psnr"]) == pytest.approx(metrics.psnr(resized, truth_b))


def test_evaluate_model_scores_the_model_and_the_gray_baseline(folders, tmp_path, capsys, monkeypatch):
    truth, _ = folders
    checkpoint = _checkpoint(tmp_path / "tiny.safetensors")
    monkeypatch.chdir(tmp_path)
    argv = ["evaluate", "--model", str(checkpoint), "--data", str(truth), "--limit", "2", "--no-progress"]
    assert cli(evaluate_cli, argv) == 0
    printed = capsys.readouterr().out
    reports = list((tmp_path / "reports").iterdir())
    assert len(reports) == 1 and reports[0].name.startswith("tiny-truth-")
    assert cli(evaluate_cli, argv) == 0  # same second: a new folder, never the old one
    assert len(list((tmp_path / "reports").iterdir())) == 2

    rows = _read_csv(reports[0] / "metrics.csv")
    assert [(r["image"], r["system"]) for r in rows] == [("a.png", "tiny"), ("a.png", BASELINE_NAME),
                                                         ("b.png", "tiny"), ("b.png", BASELINE_NAME)]
    colorizer = Colorizer(str(checkpoint))
    for row in rows:
        truth_rgb = read_rgb(truth / row["image"])
        if row["system"] == "tiny":
            output = colorizer.colorize_photo(Photo(lightness=cielab_lightness(truth_rgb)))
            assert float(row["seconds"]) > 0
        else:
            output = gray_baseline(truth_rgb)
            assert row["seconds"] == ""
        assert float(row["psnr"]) == pytest.approx(metrics.psnr(output, truth_rgb))
        assert float(row["ciede2000"]) == pytest.approx(metrics.ciede2000(output, truth_rgb))
    summary = json.loads((reports[0] / "summary.json").read_text())
    assert [s["name"] for s in summary["systems"]] == ["tiny", BASELINE_NAME]
    assert summary["systems"][0]["parameters"] == create_model("tinctnet", width=4, input_size=32).num_parameters()
    assert "not verified" in summary["notes"][0]
    assert "tiny " in printed and BASELINE_NAME in printed and "s per image" in printed


def test_gray_baseline_keeps_lightness_and_drops_colour():
    truth = _colour_image(4)
    lab = rgb_to_lab(gray_baseline(truth))
    np.testing.assert_allclose(lab[..., 0], cielab_lightness(truth), atol=0.5)  # 8-bit rounding only
    assert np.abs(lab[..., 1:]).max() < 0.6
    assert metrics.colorfulness(gray_baseline(truth)) < 1.0


def test_evaluate_refuses_training_data(folders, tmp_path, capsys):
    truth, _ = folders
    checkpoint = _checkpoint(tmp_path / "trained.safetensors", data_config={"sources": [str(truth)]})
    for data in (truth, truth / "sub"):  # the training folder itself, and a folder inside it
        argv = ["evaluate", "--model", str(checkpoint), "--data", str(data), "--out", str(tmp_path / "r")]
        status, line = fails(argv, capsys)
        assert status == 1 and line.startswith(f"tinct evaluate: {data}") and "was trained on" in line, line
        assert "--allow-train-data" in line
    assert not (tmp_path / "r").exists()
    argv = ["evaluate", "--model", str(checkpoint), "--data", str(truth), "--out", str(tmp_path / "r"),
            "--limit", "1", "--allow-train-data", "--no-progress"]
    assert cli(evaluate_cli, argv) == 0
    notes = json.loads((tmp_path / "r" / "summary.json").read_text())["notes"]
    assert "WARNING evaluated on its own training data" in notes[0]
    # a sibling folder is held out
    other = tmp_path / "held_out"
    _save(other / "x.png", _colour_image(5))
    argv = ["evaluate", "--model", str(checkpoint), "--data", str(other), "--out", str(tmp_path / "r2"), "--no-progress"]
    assert cli(evaluate_cli, argv) == 0
    assert "outside the 1 training folder" in json.loads((tmp_path / "r2" / "summary.json").read_text())["notes"][0]


def test_compare_two_checkpoints(folders, tmp_path, capsys):
    truth, _ = folders
    first = _checkpoint(tmp_path / "first.safetensors", seed=1)
    second = _checkpoint(tmp_path / "second.safetensors", seed=2)
    out = tmp_path / "board"
    argv = ["compare", "--models", str(first), str(second), "--data", str(truth), "--out", str(out),
            "--limit", "2", "--no-progress"]
    assert cli(compare_cli, argv) == 0
    printed = capsys.readouterr().out
    assert (out / "leaderboard.md").is_file() and (out / "leaderboard.html").is_file()
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in table] == ["system", "first", "second", BASELINE_NAME]
    header = [c.strip() for c in table[0].split("|")[1:-1]]
    parameters = create_model("tinctnet", width=4, input_size=32).num_parameters()
    summary = {s["name"]: s for s in json.loads((out / "summary.json").read_text())["systems"]}
    for line in table[1:3]:
        cells = dict(zip(header, (c.strip() for c in line.split("|")[1:-1])))
        assert cells["parameters"] == f"{parameters:,}"
        assert float(cells["s/image"]) > 0
        psnr_mean = summary[cells["system"]]["per_image"]["psnr"]["mean"]
        assert float(cells["PSNR (dB) (higher)"]) == pytest.approx(psnr_mean, abs=1e-3)
    baseline = dict(zip(header, (c.strip() for c in table[3].split("|")[1:-1])))
    assert baseline["s/image"] == "-" and baseline["parameters"] == "0"
    assert "first" in (out / "leaderboard.html").read_text()


class _TinyInception(torch.nn.Module):
    """Stands in for the 24M-parameter Inception so the FID path runs in a test."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=2)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def test_fid_and_lpips_through_the_cli_with_tiny_networks(folders, tmp_path, monkeypatch, capsys):
    from tinct.metrics import fid as fid_module
    from tinct.metrics.lpips import AlexNetFeatures, lpips_from_files

    truth, pred = folders
    monkeypatch.setattr(fid_module, "FIDInceptionV3", _TinyInception)
    torch.manual_seed(0)
    tiny = _TinyInception()
    torch.save(tiny.state_dict(), tmp_path / "inception.pth")
    torch.save(AlexNetFeatures().state_dict(), tmp_path / "alexnet.pth")
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(AlexNetFeatures.CHANNELS)},
               tmp_path / "alex.pth")
    out = tmp_path / "report"
    argv = ["evaluate", "--pred", str(pred), "--gt", str(truth), "--out", str(out), "--no-progress",
            "--fid-weights", str(tmp_path / "inception.pth"),
            "--lpips-weights", str(tmp_path / "alex.pth"), "--lpips-backbone", str(tmp_path / "alexnet.pth")]
    assert cli(evaluate_cli, argv) == 0
    printed = capsys.readouterr().out
    assert "FID" in printed and "LPIPS" in printed
    summary = json.loads((out / "summary.json").read_text())
    systems = {s["name"]: s for s in summary["systems"]}

    # recompute FID and LPIPS directly with the same networks
    scorer = fid_module.FrechetScorer(tiny)
    lpips = lpips_from_files(tmp_path / "alex.pth", tmp_path / "alexnet.pth")
    expected_lpips = []
    for name in ("a", "b", "sub/c"):
        truth_rgb = read_rgb(truth / f"{name}.png")
        output = read_rgb(next(pred.glob(f"{name}.*")))
        scorer.add("truth", truth_rgb)
        scorer.add("pred", output)
        expected_lpips.append(lpips.distance(output, truth_rgb))
    assert systems["pred"]["set"]["fid"] == pytest.approx(scorer.distance("pred", "truth"), rel=1e-4)
    assert systems[BASELINE_NAME]["set"]["fid"] > 0
    assert systems["pred"]["per_image"]["lpips"]["mean"] == pytest.approx(np.mean(expected_lpips), rel=1e-5)
    assert set(summary["optional_metrics"]) == {"fid", "lpips"}


@pytest.mark.parametrize("option", ["--fid-weights", "--lpips-weights"])
def test_missing_weight_file_is_a_clear_error(folders, tmp_path, capsys, option):
    truth, pred = folders
    missing = tmp_path / "not_here.pth"
    argv = ["evaluate", "--pred", str(pred), "--gt", str(truth), "--out", str(tmp_path / "r"), option, str(missing)]
    if option == "--lpips-weights":
        argv += ["--lpips-backbone", str(missing)]
    assert fails(argv, capsys) == (1, f"tinct evaluate: {missing}: no such weight file")
    assert not (tmp_path / "r").exists()


def test_usage_errors(folders, tmp_path, capsys):
    truth, pred = folders
    cases = [  # (argv, status, the line): a bad request is 2, a model that cannot be opened 1
        (["evaluate", "--model", "x.safetensors"], 2, "tinct evaluate: --model needs --data DIR"),
        (["evaluate", "--pred", str(pred)], 2, "tinct evaluate: --pred needs --gt DIR"),
        (["evaluate", "--model", "m", "--pred", str(pred), "--gt", str(truth)], 2,
         "tinct evaluate: --model and --pred cannot be combined"),
        (["evaluate", "--model", "m", "--data", str(truth), "--limit", "0"], 2,
         "tinct evaluate: --limit must be >= 1, got 0"),
        (["compare", "--models", "m", "--data", str(truth), "--limit", "0"], 2,
         "tinct compare: --limit must be >= 1, got 0"),
        (["evaluate", "--model", str(tmp_path / "no.safetensors"), "--data", str(truth)], 1,
         f"tinct evaluate: {tmp_path / 'no.safetensors'}: no such checkpoint"),
    ]
    for argv, status, start in cases:
        got, line = fails(argv, capsys)
        assert got == status and line.startswith(start), (argv, got, line)


def test_target_scores_agree_with_the_full_scoring():
    from tinct.evaluate.scoring import score_pair, set_metrics, target_scores, truth_scores

    rng = np.random.default_rng(3)
    truths = [rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(3)]
    outputs = [np.clip(t.astype(int) + rng.integers(-40, 40, t.shape), 0, 255).astype(np.uint8) for t in truths]
    infos = [truth_scores(t) for t in truths]
    rows = [score_pair(o, t, i) for o, t, i in zip(outputs, truths, infos)]
    whole_set = set_metrics(rows, infos)
    got = target_scores(outputs, truths, infos)
    assert got["psnr"] == pytest.approx(np.mean([r["psnr"] for r in rows]), abs=1e-12)
    assert got["ciede2000"] == pytest.approx(np.mean([r["ciede2000"] for r in rows]), abs=1e-12)
    assert got["chroma_ratio"] == pytest.approx(whole_set["chroma_ratio"], abs=1e-12)
    assert got["delta_cf"] == pytest.approx(whole_set["delta_colorfulness"], abs=1e-12)
    assert got["ciede2000"] > 1 and 0.5 < got["chroma_ratio"] < 2  # scored, not zeros
    # The same figures from the scorer that keeps the truths; its gray baseline has no colour.
    from tinct.evaluate.scoring import TargetScorer, gray_baseline

    scorer = TargetScorer(truths)
    assert scorer(outputs) == pytest.approx(got, abs=1e-12)
    gray = scorer.gray()
    assert gray == pytest.approx(target_scores([gray_baseline(t) for t in truths], truths, infos), abs=1e-12)
    assert gray["chroma_ratio"] < 0.01 and gray["delta_cf"] > 10  # random truths are colourful


# ---------------------------------------------------------------------------------------------
# held-out check with checkpoints exactly as `tinct train` writes them
# ---------------------------------------------------------------------------------------------


def _training_source(kind: str, root: Path) -> tuple[str, Path, Path]:
    """(``--data`` source, the folder it names, a folder of colour photos inside it) for ``kind``."""
    from test_numpy_models import write_cifar

    folder = root / kind
    if kind in ("folder", "coco"):
        for i in range(6):
            _save(folder / ("sub" if i % 2 else "") / f"p{i}.png", _colour_image(i))
        inside = folder / "sub"
    elif kind == "caltech101":
        for i in range(6):
            _save(folder / ("cat" if i % 2 else "dog") / f"image_{i:04d}.png", _colour_image(i))
        inside = folder / "dog"
    elif kind == "cifar100":
        write_cifar(folder, train=8, test=2)
        inside = folder / "previews"
    else:  # lab-arrays: seed 002's OpenCV 8-bit Lab arrays
        rng = np.random.default_rng(0)
        (folder / "l").mkdir(parents=True)
        (folder / "ab").mkdir()
        np.save(folder / "l" / "gray_scale.npy", rng.integers(0, 256, (6, 24, 24), dtype=np.uint8))
        np.save(folder / "ab" / "ab1.npy", rng.integers(100, 156, (6, 24, 24, 2), dtype=np.uint8))
        inside = folder / "previews"
    if inside.name == "previews":  # photos inside a source that holds none, so evaluate has images
        _save(inside / "x.png", _colour_image(7))
    source = str(folder) if kind == "folder" else f"{kind}:{folder}"
    return source, folder, inside


@pytest.mark.parametrize("kind", ["folder", "coco", "caltech101", "cifar100", "lab-arrays"])
def test_evaluate_refuses_the_training_data_of_a_trained_checkpoint(kind, tmp_path, capsys):
    from tinct.cli import main
    from tinct.evaluate import training_folders
    from tinct.models import load

    source, folder, inside = _training_source(kind, tmp_path / "data")
    run = tmp_path / "run"
    tiny = ["model.hidden=[2]", "data.size=16", "data.random_crop=false", "data.val_fraction=0.2",
            "train.epochs=1", "train.batch_size=64", "train.samples=0", "train.tensorboard=false", "train.threads=1"]
    argv = ["train", "--model", "window-mlp", "--data", source, "--out", str(run), "--no-progress"]
    assert main([*argv, *[a for s in tiny for a in ("--set", s)]]) == 0, capsys.readouterr().err
    capsys.readouterr()
    checkpoint = run / "last.safetensors"
    _, info = load(checkpoint)
    recorded = info.extra["data_config"]["sources"]
    assert recorded == [f"{kind}:{folder}"]  # how the trainer records a source
    assert training_folders(info) == [folder.resolve()]

    (tmp_path / "link").symlink_to(folder, target_is_directory=True)
    for data in (folder, inside, tmp_path / "link" / inside.relative_to(folder)):
        argv = ["evaluate", "--model", str(checkpoint), "--data", str(data), "--out", str(tmp_path / "r"),
                "--no-progress"]
        status, line = fails(argv, capsys)
        assert status == 1 and line.startswith("tinct evaluate: "), (data, line)
        assert f"was trained on {folder.resolve()}" in line and "--allow-train-data" in line
    assert not (tmp_path / "r").exists()
    elsewhere = _save(tmp_path / "held_out" / "x.png", _colour_image(8)).parent
    argv = ["evaluate", "--model", str(checkpoint), "--data", str(elsewhere), "--out", str(tmp_path / "r"),
            "--no-progress"]
    assert cli(evaluate_cli, argv) == 0
    notes = json.loads((tmp_path / "r" / "summary.json").read_text())["notes"]
    assert "outside the 1 training folder" in notes[0]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell files apart")
@pytest.mark.parametrize("name", ["summary.json", "metrics.csv", "index.html", "histograms.png"])
def test_a_full_disk_leaves_no_report_and_names_the_file(name, folders, tmp_path, monkeypatch, capsys):
    from test_train import full_disk_when_writing

    truth, pred = folders
    out = tmp_path / "report"
    with monkeypatch.context() as patch:
        full_disk_when_writing(patch, name)
        status, line = fails(["evaluate", "--pred", str(pred), "--gt", str(truth), "--out", str(out),
                              "--no-progress"], capsys)  # fmt: skip
    assert status == 1 and line.startswith(f"tinct evaluate: {out / name}: cannot write the report (No space left"), line
    assert not out.exists() and not list(tmp_path.rglob("*.part"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell files apart")
def test_a_full_disk_leaves_no_leaderboard(folders, tmp_path, monkeypatch, capsys):
    from test_train import full_disk_when_writing

    truth, _ = folders
    out = tmp_path / "board"
    model = _checkpoint(tmp_path / "m.safetensors")
    with monkeypatch.context() as patch:
        full_disk_when_writing(patch, "leaderboard.html")
        argv = ["compare", "--models", str(model), "--data", str(truth), "--out", str(out), "--limit", "1", "--no-progress"]
        status, line = fails(argv, capsys)
    assert status == 1 and line.startswith(f"tinct compare: {out / 'leaderboard.html'}: cannot write the report"), line
    assert not out.exists() and not list(tmp_path.rglob("*.part"))


# ---------------------------------------------------------------------------------------------
# --data takes every training source kind
# ---------------------------------------------------------------------------------------------


def test_truths_of_cifar100_and_lab_array_sources_are_their_pixels(tmp_path):
    from test_data import lab_array_parts
    from test_numpy_models import smooth_rgb, write_cifar
    from skimage.color import lab2rgb

    from tinct.evaluate.runner import EvaluationError, truth_items

    write_cifar(tmp_path / "cifar", train=6, test=3)
    folder, items, spec = truth_items(f"cifar100:{tmp_path / 'cifar'}:52")
    assert folder == tmp_path / "cifar" and spec.kind == "cifar100"
    assert [item.name for item in items] == [f"cifar/test/{i:05d}" for i in range(3)]  # the test split only
    expected = smooth_rgb(3, 32, seed=len("test"))  # what write_cifar pickled as the test file
    for item, rgb in zip(items, expected):
        np.testing.assert_array_equal(item.truth_pixels(), rgb)

    arrays, lab8 = lab_array_parts(tmp_path / "kaggle", sizes=(3, 2), side=16)
    _, items, _ = truth_items(f"lab-arrays:{arrays}:parts=2", limit=1)
    assert [item.name for item in items] == ["kaggle/l/000003"]
    row = lab8[3].astype(np.float64)
    lab = np.stack([row[..., 0] * 100 / 255, row[..., 1] - 128, row[..., 2] - 128], -1)
    reference = np.clip(lab2rgb(lab) * 255 + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(items[0].truth_pixels().astype(int) - reference).max() <= 1
    with pytest.raises(EvaluationError, match="is not a folder"):
        truth_items(f"coco:{tmp_path / 'missing'}")


def test_evaluate_data_takes_cifar100_lab_arrays_and_coco_sources(tmp_path, capsys):
    from test_data import lab_array_parts
    from test_numpy_models import write_cifar

    write_cifar(tmp_path / "cifar", train=6, test=3)
    arrays, _ = lab_array_parts(tmp_path / "kaggle", sizes=(3, 2), side=16)
    for i in range(2):
        _save(tmp_path / "coco" / "val2017" / f"{i:012d}.jpg", _colour_image(i))
    checkpoint = _checkpoint(tmp_path / "tiny.safetensors")
    cases = [
        (f"cifar100:{tmp_path / 'cifar'}:52", 3, "the CIFAR-100 test split"),
        (f"lab-arrays:{arrays}", 5, "ab parts all present"),
        (f"lab-arrays:{arrays}:parts=2", 2, "ab parts 2"),
        (f"coco:{tmp_path / 'coco'}", 2, None),
    ]
    for n, (data, count, note) in enumerate(cases):
        out = tmp_path / f"report{n}"
        argv = ["evaluate", "--model", str(checkpoint), "--data", data, "--out", str(out), "--no-progress"]
        assert cli(evaluate_cli, argv) == 0, capsys.readouterr().err
        summary = json.loads((out / "summary.json").read_text())
        assert summary["num_images"] == count
        assert {s["name"] for s in summary["systems"]} == {"tiny", BASELINE_NAME}
        if note:
            assert note in summary["notes"][0]
    capsys.readouterr()


def _train_window_mlp(source: str, run: Path, capsys) -> Path:
    from tinct.cli import main

    tiny = ["model.hidden=[2]", "data.size=16", "data.random_crop=false", "data.val_fraction=0.2",
            "train.epochs=1", "train.batch_size=64", "train.samples=0", "train.tensorboard=false", "train.threads=1"]
    argv = ["train", "--model", "window-mlp", "--data", source, "--out", str(run), "--no-progress"]
    assert main([*argv, *[a for s in tiny for a in ("--set", s)]]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return run / "last.safetensors"


def test_held_out_within_a_source_cifar100_test_split_and_untrained_lab_array_parts(tmp_path, capsys):
    from test_data import lab_array_parts
    from test_numpy_models import write_cifar

    write_cifar(tmp_path / "cifar", train=8, test=2)
    checkpoint = _train_window_mlp(f"cifar100:{tmp_path / 'cifar'}:52", tmp_path / "run-cifar", capsys)
    out = tmp_path / "r-cifar"
    argv = ["evaluate", "--model", str(checkpoint), "--data", f"cifar100:{tmp_path / 'cifar'}:52", "--out", str(out),
            "--no-progress"]
    assert cli(evaluate_cli, argv) == 0, capsys.readouterr().err
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert "the test file of" in notes[1] and "held out" in notes[1]

    arrays, _ = lab_array_parts(tmp_path / "kaggle", sizes=(6, 3), side=16)
    checkpoint = _train_window_mlp(f"lab-arrays:{arrays}:parts=1", tmp_path / "run-arrays", capsys)
    out = tmp_path / "r-arrays"
    argv = ["evaluate", "--model", str(checkpoint), "--data", f"lab-arrays:{arrays}:parts=2", "--out", str(out),
            "--no-progress"]
    assert cli(evaluate_cli, argv) == 0, capsys.readouterr().err
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert "ab parts [2]" in notes[1] and "not the trained parts [1]" in notes[1]
    for data in (f"lab-arrays:{arrays}:parts=1,2", f"lab-arrays:{arrays}"):
        argv = ["evaluate", "--model", str(checkpoint), "--data", data, "--out", str(tmp_path / "no"), "--no-progress"]
        status, line = fails(argv, capsys)
        assert status == 1 and line.startswith("tinct evaluate: ") and "was trained on" in line, line
