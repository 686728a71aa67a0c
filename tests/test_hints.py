"""Point hints and reference photos: the hints file format, rasterising points for the working
square, hints sampled from the truth, reference histograms, and the hint model's inputs
(zero-initialised branch, hints sampled in training, a model without hints refusing them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tinct.color import LAB, rgb_to_lab
from tinct.hints import (
    Hint,
    HintError,
    check_hints_fit,
    hint_points,
    hints_from_truth,
    hints_to_json,
    parse_hints,
    read_hints,
    reference_histogram,
    GAIN_RANGE,
    colorfulness_gain,
)
from tinct.models import ab_bins, create_model


def test_a_hints_file_round_trips(tmp_path):
    hints = [Hint(10.0, 20.5, (255, 0, 0)), Hint(0.0, 0.0, (18, 52, 86))]
    path = tmp_path / "photo.hints.json"
    path.write_text(hints_to_json(hints, (640, 480)))
    again, size = read_hints(path)
    assert again == hints and size == (640, 480)
    assert json.loads(path.read_text())["hints"][1]["color"] == "#123456"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"hints": [{"x": 1, "y": 2, "color": "#ff0000"}, {"x": 1, "color": "#00ff00"}]}, "hint 2: y must be a number"),
        ([{"x": 1, "y": 2, "color": "red"}], "hint 1: color 'red' is not"),
        ([{"x": 1, "y": 2, "color": [0, 300, 0]}], r"hint 1: color \[0, 300, 0\] must hold three numbers in 0-255"),
        ([{"x": 1, "y": 2}], "hint 1: no color"),
        ([{"x": 1, "y": 2, "color": "#000000", "radius": 3}], "hint 1: unknown key 'radius'"),
        ({"width": 10, "hints": []}, "give both 'width' and 'height'"),
        ({"points": []}, "expected a 'hints' list"),
        ("#ff0000", "expected a list of hints"),
    ],
)
def test_bad_hints_name_the_entry(data, message):
    with pytest.raises(HintError, match=message) as info:
        parse_hints(data, "old.hints.json")
    assert str(info.value).startswith("old.hints.json: ") and "\n" not in str(info.value)


def test_bad_json_and_missing_files_are_one_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"hints": [ {"x": 1,, } ]}')
    with pytest.raises(HintError, match=r"bad.json: not valid JSON \(line 1"):
        read_hints(path)
    with pytest.raises(HintError, match="no such hints file"):
        read_hints(tmp_path / "absent.json")


def test_hints_outside_the_photo_or_for_another_photo_are_refused():
    hints = [Hint(5, 5, (0, 0, 0)), Hint(100, 5, (0, 0, 0))]
    with pytest.raises(HintError, match=r"hint 2: \(100, 5\) is outside the 100x50 photo"):
        check_hints_fit(hints, 100, 50)
    with pytest.raises(HintError, match="written for a 200x100 photo, this one is 100x50"):
        check_hints_fit(hints[:1], 100, 50, size=(200, 100))
    check_hints_fit(hints[:1], 100, 50, size=(100, 50))


def test_hint_points_land_where_the_photo_sits_in_the_square():
    # A 400x200 (w x h) photo in a 64 square: content 64 wide, 32 high, top-left aligned.
    blue = (40, 80, 220)
    points = hint_points([Hint(399, 100, blue)], photo_size=(200, 400), content=(32, 64), size=64, patch=3)
    rows, cols = np.nonzero(points[2])
    assert sorted(set(rows.tolist())) == [15, 16, 17] and sorted(set(cols.tolist())) == [62, 63]
    expected = LAB.normalize_ab(rgb_to_lab(np.array([[blue]], dtype=np.uint8))[0, 0, 1:])
    np.testing.assert_allclose(points[:2, 16, 63], expected, atol=1e-5)
    assert points[:, 40:].sum() == 0  # nothing in the padding
    assert not hint_points([], (200, 400), (32, 64), 64, patch=3).any()


def test_hints_from_the_truth_are_reproducible_and_carry_its_colours():
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:, :40] = (200, 30, 30)
    rgb[:, 40:] = (30, 30, 200)
    a, b = hints_from_truth(rgb, 20, seed=3), hints_from_truth(rgb, 20, seed=3)
    assert a == b and len(a) == 20 and a != hints_from_truth(rgb, 20, seed=4)
    for hint in a:
        if hint.x < 37:
            assert hint.rgb == (200, 30, 30)
        elif hint.x > 42:
            assert hint.rgb == (30, 30, 200)
    check_hints_fit(a, 80, 60)


def test_a_reference_histogram_puts_its_mass_on_the_photos_colour():
    centers = ab_bins.bin_centers()
    rgb = np.zeros((50, 70, 3), np.uint8)
    rgb[:] = (30, 140, 40)  # one green
    hist = reference_histogram(rgb, centers)
    assert hist.shape == (len(centers),) and abs(hist.sum() - 1) < 1e-5
    green_ab = torch.from_numpy(rgb_to_lab(rgb[:1, :1])[0, 0, 1:].astype(np.float32))
    assert hist.argmax() == torch.cdist(green_ab[None], centers).argmin().item()
    assert hist.max() == pytest.approx(1.0)


def test_the_colourfulness_gain_reaches_the_target_within_its_range():
    from tinct.color import lab_to_rgb_uint8
    from tinct.metrics import colorfulness

    rng = np.random.default_rng(0)
    lightness = np.tile(np.linspace(25, 85, 60, dtype=np.float32), (40, 1))
    ab = np.stack([np.full((40, 60), 12.0), rng.normal(0, 8, (40, 60))]).astype(np.float32)
    target = colorfulness(lab_to_rgb_uint8(lightness, 1.7 * ab[0], 1.7 * ab[1]))
    gain = colorfulness_gain(lightness, ab, target)
    assert gain == pytest.approx(1.7, rel=0.02)
    assert colorfulness_gain(lightness, ab, 0.0) == GAIN_RANGE[0]  # a gray reference: least colour
    assert colorfulness_gain(lightness, ab, 1e4) == GAIN_RANGE[1]  # beyond reach: most colour
    with pytest.raises(ValueError, match=r"expected ab of shape \(2, 40, 60\)"):
        colorfulness_gain(lightness, ab[:, :10], target)


def test_a_reference_can_make_the_shipped_model_as_colourful_as_it():
    import tinct
    from tinct.io import read_rgb
    from tinct.metrics import colorfulness

    gray = read_rgb(Path(tinct.__file__).parent / "examples" / "rooster.jpg")  # a gray photo
    plain = tinct.colorize(gray, hints=[])
    reference = np.zeros((60, 80, 3), np.uint8)
    reference[:30], reference[30:, :40], reference[30:, 40:] = (110, 140, 180), (90, 130, 80), (170, 110, 80)
    want = colorfulness(reference)  # sky, grass and brick: more colourful than the plain result
    assert want > 2 * colorfulness(plain)
    guided = tinct.colorize(gray, reference=reference, reference_match="histogram")  # not matched
    matched = tinct.colorize(gray, reference=reference, reference_match="colorfulness")
    assert abs(colorfulness(matched) - want) < 0.05 * want < abs(colorfulness(guided) - want), \
        (colorfulness(plain), colorfulness(guided), colorfulness(matched), want)
    transferred = tinct.colorize(gray, reference=reference)  # the default: colours' mean and spread too
    assert abs(colorfulness(transferred) - want) < 0.05 * want
    assert np.abs(transferred.astype(int) - matched).mean() > 1  # the mean and spread moved the colours
    # Four times the plain colourfulness: a chroma gain alone stops at GAIN_RANGE's end, the default
    # (which moves the colours' mean and spread first) still gets there.
    vivid = reference.copy()
    vivid[:30], vivid[30:, :40], vivid[30:, 40:] = (90, 140, 200), (70, 130, 60), (180, 90, 60)
    want = colorfulness(vivid)
    assert want > 3.5 * colorfulness(plain)
    assert abs(colorfulness(tinct.colorize(gray, reference=vivid)) - want) < 0.05 * want
    dull = tinct.colorize(gray, reference=np.full((30, 30, 3), 120, np.uint8), reference_match="colorfulness")
    assert colorfulness(dull) < 0.4 * colorfulness(plain)


def _tiny_auto(tmp_path):
    from tinct.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    auto = create_model("tinctnet2", width=8, input_size=64, pretrained=False).eval()
    path = tmp_path / "auto.safetensors"
    save_checkpoint(path, auto)
    return auto, path


def test_a_hint_model_starts_as_the_automatic_model_it_comes_from(tmp_path):
    auto, path = _tiny_auto(tmp_path)
    hinted = create_model("tinctnet2", width=8, input_size=64, pretrained=False, hints=True, hint_base=str(path))
    assert "auto.safetensors" in hinted.load_pretrained()
    hinted.eval()
    l = torch.rand(2, 1, 64, 64) * 100
    points = torch.zeros(2, 3, 64, 64)
    points[:, :2, 10:13, 10:13] = 0.5
    points[:, 2, 10:13, 10:13] = 1
    with torch.no_grad():
        expected = auto.predict_ab(l)
        torch.testing.assert_close(hinted.predict_ab(l), expected)
        torch.testing.assert_close(hinted.predict_ab(l, points, torch.full((2, auto.bin_centers.shape[0]), 1 / 323)), expected)
        # Once its projections are not zero, the hints change the colours.
        for p in hinted.hint_branch.parameters():
            p.add_(0.05)
        assert (hinted.predict_ab(l, points) - expected).abs().max() > 1e-3
    with pytest.raises(ValueError, match="takes no hints"):
        auto.predict_ab(l, points)


def test_a_hint_base_of_another_shape_is_refused(tmp_path):
    _, path = _tiny_auto(tmp_path)
    wider = create_model("tinctnet2", width=16, input_size=64, pretrained=False, hints=True, hint_base=str(path))
    with pytest.raises(ValueError, match="does not fit this model"):
        wider.load_pretrained()


def test_training_samples_hints_from_the_truth():
    model = create_model("tinctnet2", width=8, input_size=64, pretrained=False, hints=True,
                         hint_none_rate=0.0, hint_histogram_rate=1.0, hint_max_points=50)
    ab = torch.zeros(4, 2, 64, 64)
    ab[:, 0] = 40.0  # a red-ish truth everywhere
    generator = torch.Generator().manual_seed(0)
    points, histogram = model.sample_hints(ab, generator)
    mask = points[:, 2] > 0
    assert mask.flatten(1).any(dim=1).all()  # every crop got points (none_rate 0)
    torch.testing.assert_close(points[:, 0][mask], torch.full_like(points[:, 0][mask], 40.0 / 110))
    assert (points[:, :2][~mask.unsqueeze(1).expand(-1, 2, -1, -1)] == 0).all()
    torch.testing.assert_close(histogram.sum(dim=1), torch.ones(4))
    none = create_model("tinctnet2", width=8, input_size=64, pretrained=False, hints=True,
                        hint_none_rate=1.0, hint_histogram_rate=0.0)
    points, histogram = none.sample_hints(ab, generator)
    assert not points.any() and not histogram.any()
    loss, metrics = model.train().training_loss(torch.rand(4, 1, 64, 64) * 100, ab)
    loss.backward()
    assert model.hint_branch.project[0].weight.grad.abs().sum() > 0  # the zero projections learn


def test_the_hints_preset_fine_tunes_from_its_automatic_base(tmp_path):
    from conftest import make_sky_grass_photos
    from tinct.cli import main
    from tinct.models import load

    auto, path = _tiny_auto(tmp_path)
    photos = make_sky_grass_photos(tmp_path / "photos", count=12)
    code = main(["train", "--preset", "tinctnet2-hints", "--data", str(photos), "--out", str(tmp_path / "run"),
                 "--no-progress", "--set", "model.width=8", "--set", "model.input_size=64",
                 "--set", f"model.hint_base={path}", "--set", "data.size=64",
                 "--set", "data.cache_dir=null", "--set", "train.epochs=1", "--set", "train.batch_size=4",
                 "--set", "train.max_steps_per_epoch=2", "--set", "train.samples=1", "--set", "train.tensorboard=false",
                 "--set", "train.statistics_pixels=2000", "--set", "train.threads=1"])
    assert code == 0
    trained, _ = load(tmp_path / "run" / "last.safetensors")
    assert trained.config.hints and trained.hint_branch is not None
    torch.testing.assert_close(trained.encoder._conv_stem.weight, auto.encoder._conv_stem.weight)  # frozen, from the base
    assert trained.hint_branch.project[0].weight.abs().max() > 0  # the hint branch trained


def _tiny_hint_checkpoint(tmp_path, auto_path):
    from tinct.models.checkpoint import save_checkpoint

    hinted = create_model("tinctnet2", width=8, input_size=64, pretrained=False, hints=True, hint_base=str(auto_path))
    hinted.load_pretrained()
    path = tmp_path / "hinted.safetensors"
    save_checkpoint(path, hinted.eval())
    return hinted, path


def test_a_point_covers_the_models_hint_patch(tmp_path, monkeypatch):
    import tinct.hints as hints_module
    from tinct.hints import colorize_with_hints
    from tinct.infer import Colorizer
    from tinct.io import Photo

    _, auto_path = _tiny_auto(tmp_path)
    hinted, _ = _tiny_hint_checkpoint(tmp_path, auto_path)
    masks = []
    real = hints_module.hint_points
    monkeypatch.setattr(hints_module, "hint_points", lambda *a: masks.append(real(*a)[2].sum()) or real(*a))
    photo = Photo(lightness=np.full((48, 80), 50.0, dtype=np.float32))
    for patch in (1, 3, 5):
        hinted.config.hint_patch = patch
        colorize_with_hints(Colorizer(hinted, engine="torch"), photo, [Hint(40, 24, (0, 0, 255))])
    assert masks == [1, 9, 25]
    with pytest.raises(ValueError, match="hint_patch must be at least 1"):
        create_model("tinctnet2", width=8, pretrained=False, hints=True, hint_patch=0)


def test_spreading_carries_a_points_error_to_alike_pixels_near_it_and_no_further():
    from tinct.hints import spread_hints

    lightness = np.full((40, 60), 30.0, dtype=np.float32)
    lightness[:, 30:] = 80.0  # a dark left half and a light right half
    ab = np.full((2, 40, 60), 5.0, dtype=np.float32)
    point, colour = np.array([[20, 10]]), np.array([[45.0, -15.0]])  # on the dark half
    np.testing.assert_array_equal(spread_hints(lightness, ab, np.zeros((0, 2), int), np.zeros((0, 2)), 0.5, 10, 0.2, 1.0), ab)
    out = spread_hints(lightness, ab, point, colour, 0.5, 10.0, 0.2, reach=1.0)  # reach: up to a long side
    error = colour[0] - 5.0
    np.testing.assert_allclose(out[:, 20, 10], 5.0 + error / 1.2, rtol=1e-5)  # weight 1 at the point itself
    assert np.abs(out[:, 20, 25] - 5.0).min() > 0.5 * np.abs(error).min()  # same lightness, nearby: follows
    np.testing.assert_allclose(out[:, :, 30:], 5.0, atol=1e-3)  # across the change of lightness: untouched
    # Between two points of the same lightness the correction is a weighted mean of their errors.
    both = spread_hints(np.full((40, 60), 50.0, np.float32), np.zeros((2, 40, 60), np.float32),
                        np.array([[20, 10], [20, 50]]), np.array([[10.0, 0.0], [30.0, 0.0]]), 0.5, 10.0, 1e-6, 1.0)
    assert 10.0 < both[0, 20, 30] < 30.0 and abs(both[0, 20, 30] - 20.0) < 0.1 and abs(both[0, 20, 10] - 10.0) < 2.0
    # One point reaches half its (whole-photo) spacing, unless the reach caps it: 0.1 of the long side.
    far = (20, 28)  # 18 px from the point, on the same dark half
    assert abs(out[0, far[0], far[1]] - 5.0) > 10.0
    capped = spread_hints(lightness, ab, point, colour, 0.5, 10.0, 0.2, reach=0.1)
    np.testing.assert_allclose(capped[:, 20, 10], out[:, 20, 10], rtol=1e-5)
    assert abs(capped[0, far[0], far[1]] - 5.0) < 0.1 * abs(error[0])  # 3 widths away
    with pytest.raises(ValueError, match="expected ab of shape"):
        spread_hints(lightness, ab[:, :20], point, colour, 0.5, 10.0, 0.2, 1.0)


def test_spreading_brings_the_result_to_the_points_colour_and_leaves_no_points_alone(tmp_path):
    from tinct.hints import colorize_with_hints
    from tinct.infer import Colorizer
    from tinct.io import Photo

    _, auto_path = _tiny_auto(tmp_path)
    hinted, _ = _tiny_hint_checkpoint(tmp_path, auto_path)
    colorizer = Colorizer(hinted, engine="torch")
    photo = Photo(lightness=np.full((48, 80), 50.0, dtype=np.float32))
    blue = Hint(40, 24, (40, 60, 230))
    target = rgb_to_lab(np.array([[blue.rgb]], dtype=np.uint8))[0, 0, 1:]

    def ab_at_point(rgb):
        return rgb_to_lab(rgb)[24, 40, 1:]

    plain, plain_none = (colorize_with_hints(colorizer, photo, h) for h in ([blue], []))
    hinted.config.hint_spread = 0.5
    spread, spread_none = (colorize_with_hints(colorizer, photo, h) for h in ([blue], []))
    assert np.abs(ab_at_point(spread) - target).max() < 0.5 * np.abs(ab_at_point(plain) - target).max()
    np.testing.assert_array_equal(spread_none, plain_none)
    for bad in ({"hint_spread": -1}, {"hint_spread_max": 0}):
        with pytest.raises(ValueError, match="hint_spread must be >= 0"):
            create_model("tinctnet2", width=8, pretrained=False, hints=True, **bad)


def test_a_point_keeps_its_colour_under_a_reference_of_other_colours(tmp_path):
    """The reference's colour transfer comes before the points are spread: a blue point on a
    photo guided by a red and orange reference stays blue (spread first, the transfer turned it
    red: b* +30 at the point)."""
    from tinct.hints import colorize_with_hints
    from tinct.infer import Colorizer
    from tinct.io import Photo

    _, auto_path = _tiny_auto(tmp_path)
    hinted, _ = _tiny_hint_checkpoint(tmp_path, auto_path)
    hinted.config.hint_spread = 0.5
    colorizer = Colorizer(hinted, engine="torch")
    photo = Photo(lightness=np.tile(np.linspace(30, 70, 80, dtype=np.float32), (48, 1)))
    blue = Hint(40, 24, (40, 60, 230))
    target = rgb_to_lab(np.array([[blue.rgb]], dtype=np.uint8))[0, 0, 1:]  # b* -86
    reference = np.zeros((40, 40, 3), np.uint8)
    reference[:20], reference[20:] = (200, 60, 40), (220, 150, 60)

    def ab_at_point(rgb):
        return rgb_to_lab(rgb)[24, 40, 1:]

    guided = ab_at_point(colorize_with_hints(colorizer, photo, [blue], reference))  # the default: colors
    unguided = ab_at_point(colorize_with_hints(colorizer, photo, [], reference))
    assert unguided[1] > 0 > -20 > guided[1], (guided, unguided)  # the reference alone is warm there
    assert np.abs(guided - target).max() < 0.5 * np.abs(unguided - target).max()


def test_colorizing_with_hints_checks_the_model_and_the_points(tmp_path):
    from tinct.hints import colorize_with_hints
    from tinct.infer import Colorizer
    from tinct.io import Photo

    _, auto_path = _tiny_auto(tmp_path)
    _, hint_path = _tiny_hint_checkpoint(tmp_path, auto_path)
    photo = Photo(lightness=np.linspace(0, 100, 48 * 80, dtype=np.float32).reshape(48, 80))
    automatic, hinted = Colorizer(auto_path, engine="torch"), Colorizer(hint_path, engine="torch")
    # A fresh hint model is its base: no hints, or hints through a zero branch, give the base's colours.
    np.testing.assert_array_equal(colorize_with_hints(hinted, photo), automatic.colorize_photo(photo))
    gray_reference = np.full((8, 8, 3), 90, np.uint8)
    rgb = colorize_with_hints(hinted, photo, [Hint(79, 47, (0, 0, 255))], reference=gray_reference,
                              reference_match="histogram")
    np.testing.assert_array_equal(rgb, automatic.colorize_photo(photo))
    # Matching the reference's colourfulness is the one thing that then acts: a gray reference asks
    # for the least colour (GAIN_RANGE[0] of the base's chroma).
    base_chroma = np.hypot(*rgb_to_lab(automatic.colorize_photo(photo))[..., 1:].transpose(2, 0, 1)).mean()
    matched = colorize_with_hints(hinted, photo, reference=gray_reference, reference_match="colorfulness")
    matched_chroma = np.hypot(*rgb_to_lab(matched)[..., 1:].transpose(2, 0, 1)).mean()
    assert base_chroma > 1 and abs(matched_chroma - GAIN_RANGE[0] * base_chroma) < 0.1 * base_chroma + 0.5
    with pytest.raises(HintError, match=r"hint 1: \(80, 5\) is outside the 80x48 photo"):
        colorize_with_hints(hinted, photo, [Hint(80, 5, (0, 0, 255))])
    with pytest.raises(HintError, match="takes no hints"):
        colorize_with_hints(automatic, photo, [Hint(1, 1, (0, 0, 255))])


def test_the_hint_curve_scores_every_count_beside_gray_and_the_automatic_model(tmp_path):
    from PIL import Image

    from tinct.evaluate.hints import evaluate_hints, write_hint_report

    _, auto_path = _tiny_auto(tmp_path)
    _, hint_path = _tiny_hint_checkpoint(tmp_path, auto_path)
    rng = np.random.default_rng(0)
    (tmp_path / "truths").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "truths" / f"truth{i}.png")
    torch.set_num_threads(2)
    try:
        curve = evaluate_hints(str(hint_path), tmp_path / "truths", counts=(0, 3), automatic=str(auto_path),
                               progress=False, threads=1)
        assert torch.get_num_threads() == 1  # --threads reaches the models (two processes side by side share cores)
    finally:
        torch.set_num_threads(1)
    assert sorted(curve.rows) == [0, 3] and curve.photos == 3
    # The untrained hint model is its base: every count scores exactly as the automatic model.
    assert curve.rows[0] == curve.auto and curve.rows[3] == curve.auto
    assert curve.gray["chroma_ratio"] < 0.01 < curve.auto["chroma_ratio"]
    report = write_hint_report(curve, tmp_path / "report")
    assert (tmp_path / "report" / "hints.png").stat().st_size > 1000 and "| 3 |" in report.read_text()


def test_tinct_evaluate_hints_writes_the_curve_and_refuses_a_model_without_hints(tmp_path, capsys):
    from PIL import Image

    from tinct.cli import main

    _, auto_path = _tiny_auto(tmp_path)
    _, hint_path = _tiny_hint_checkpoint(tmp_path, auto_path)
    (tmp_path / "truths").mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (36, 48, 3), dtype=np.uint8)).save(tmp_path / "truths" / f"t{i}.png")
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(hint_path), "--data", str(tmp_path / "truths"), "--hints", "3",
                 "--reference", "truth", "--out", str(out), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "| 3 |" in table and "| 100 |" in table and "gray baseline" in table
    assert json.loads((out / "hints.json").read_text())["reference"] == "truth"
    assert main(["evaluate", "--model", str(hint_path), "--data", str(tmp_path / "truths"), "--hints", "3",
                 "--out", str(out)]) == 1  # never overwritten
    refused = f"tinct evaluate: {out}: already exists; reports are never overwritten (choose another --out)\n"
    assert capsys.readouterr().err == refused
    assert main(["evaluate", "--model", str(auto_path), "--data", str(tmp_path / "truths"), "--hints", "3",
                 "--out", str(tmp_path / "other"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tinct evaluate: {auto_path.stem} takes no hints"), err
    assert err.count("\n") == 1 and not (tmp_path / "other").exists()


def test_tinct_evaluate_hints_on_a_folder_without_photos_is_one_line_naming_it(tmp_path, capsys):
    from tinct.cli import main
    from tinct.evaluate.hints import evaluate_hints
    from tinct.evaluate.runner import EvaluationError

    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    with pytest.raises(EvaluationError, match="no photos to evaluate hints on"):  # before any model is opened
        evaluate_hints("no-such-model", empty, progress=False)
    cases = {empty: f"tinct evaluate: {empty}: no photos to evaluate hints on\n",
             missing: f"tinct evaluate: {missing}: not a folder\n"}  # fmt: skip
    for data, line in cases.items():
        argv = ["evaluate", "--model", "no-such-model", "--data", str(data), "--hints", "3",
                "--out", str(tmp_path / "report"), "--no-progress"]  # fmt: skip
        assert main(argv) == 1, data
        captured = capsys.readouterr()
        assert captured.err == line and captured.out == ""
    assert not (tmp_path / "report").exists()


def test_the_python_api_and_the_command_take_hints_and_a_reference(tmp_path):
    import tinct
    from tinct.cli import main
    from tinct.hints import HINT_MODEL

    gray = np.tile(np.linspace(30, 220, 96, dtype=np.uint8), (64, 1))
    # The shipped hint model follows a point: the area around a blue hint turns bluer.
    plain = tinct.colorize(gray)
    hinted = tinct.colorize(gray, hints=[(20, 30, "#d02020")])
    want = rgb_to_lab(np.array([[[208, 32, 32]]], np.uint8))[0, 0, 1:]
    before = np.linalg.norm(rgb_to_lab(plain[25:36, 15:26])[..., 1:].mean(axis=(0, 1)) - want)
    after = np.linalg.norm(rgb_to_lab(hinted[25:36, 15:26])[..., 1:].mean(axis=(0, 1)) - want)
    assert after < before - 5, (before, after)  # the colour around a red point moves towards red
    with pytest.raises(HintError, match=r"hint 1: \(96, 0\) is outside the 96x64 photo"):
        tinct.colorize(gray, hints=[(96, 0, "#2040e0")])
    from PIL import Image

    Image.fromarray(gray).save(tmp_path / "old.png")
    (tmp_path / "old.hints.json").write_text(hints_to_json([Hint(20, 30, (32, 64, 224))], (96, 64)))
    assert main(["colorize", str(tmp_path / "old.png"), "--hints", str(tmp_path / "old.hints.json"),
                 "-o", str(tmp_path / "out.png")]) == 0
    assert (tmp_path / "out.png").exists()
    (tmp_path / "bad.hints.json").write_text('{"width": 50, "height": 64, "hints": []}')
    assert main(["colorize", str(tmp_path / "old.png"), "--hints", str(tmp_path / "bad.hints.json"),
                 "-o", str(tmp_path / "bad.png")]) == 1  # the photo fails, named
    assert not (tmp_path / "bad.png").exists()
    assert HINT_MODEL == "tinct-v2-hints"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell files apart")
@pytest.mark.parametrize("name", ["hints.json", "hints.md"])
def test_a_full_disk_while_writing_the_hint_report_names_the_file(name, tmp_path, monkeypatch):
    from test_train import full_disk_when_writing

    from tinct.evaluate.hints import HintCurve, write_hint_report
    from tinct.evaluate.runner import EvaluationError

    scores = {"psnr": 22.0, "ciede2000": 12.0, "delta_cf": 3.0, "chroma_ratio": 0.9}
    curve = HintCurve("m", "a", 2, 0, None, rows={0: scores, 10: scores}, gray=scores, auto=scores)
    full_disk_when_writing(monkeypatch, name)
    with pytest.raises(EvaluationError, match=rf"{tmp_path / 'r' / name}: cannot write the hint report \(No space left"):
        write_hint_report(curve, tmp_path / "r")
    assert not list((tmp_path / "r").glob(f".{name}.*"))  # no half-written file left


@pytest.mark.parametrize("command", [["colorize", "old.png"], ["evaluate", "--model", "tinct-v2-hints", "--data", "."]])
@pytest.mark.parametrize("flag", [["--match-colorfulness"], ["--reference-match", "colors"]])
def test_reference_match_without_a_reference_is_one_line(command, flag, capsys):
    from tinct.cli import main

    assert main([*command, *flag]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tinct {command[0]}: --reference-match/--match-colorfulness goes with --reference")
    assert "\n" not in err


def test_the_command_line_knows_the_reference_matches_of_tinct_hints():
    import tinct.cli
    import tinct.hints

    assert tinct.cli.REFERENCE_MATCHES == tinct.hints.REFERENCE_MATCHES
    assert tinct.cli.REFERENCE_MATCH == tinct.hints.REFERENCE_MATCH


def test_ab_transfer_gives_the_reference_mean_and_spread():
    from tinct.color import lab_to_rgb_uint8
    from tinct.hints import GAIN_RANGE, ab_transfer, match_reference

    rng = np.random.default_rng(0)
    lightness = np.full((32, 32), 60, np.float32)
    a = 15 + 10 * rng.standard_normal((32, 32))
    b = -20 + 6 * rng.standard_normal((32, 32))
    reference = lab_to_rgb_uint8(lightness, a.astype(np.float32), b.astype(np.float32))
    target = rgb_to_lab(reference)[..., 1:].reshape(-1, 2)
    predicted = np.stack([2 + 3 * rng.standard_normal((32, 32)), 5 + 2 * rng.standard_normal((32, 32))]).astype(np.float32)
    scale, shift = ab_transfer(predicted, reference)
    moved = predicted * scale[:, None, None] + shift[:, None, None]
    np.testing.assert_allclose(moved.reshape(2, -1).mean(1), target.mean(0), atol=1e-3)
    np.testing.assert_allclose(moved.reshape(2, -1).std(1), target.std(0), rtol=1e-3)
    flat = np.zeros((2, 8, 8), np.float32)  # no spread to scale: the gain stays in range
    assert ab_transfer(flat, reference)[0].max() == GAIN_RANGE[1]
    np.testing.assert_array_equal(match_reference(lightness, predicted, predicted, reference, "histogram"), predicted)
    with pytest.raises(HintError, match="reference_match must be one of histogram, colorfulness, colors; got 'vivid'"):
        match_reference(lightness, predicted, predicted, reference, "vivid")


def test_the_spreading_search_scores_each_setting_and_writes_the_chosen_one(tmp_path, capsys):
    import importlib.util

    from PIL import Image

    from tinct.models import load

    spec = importlib.util.spec_from_file_location("tune_hint_spread", Path(__file__).parents[1] / "bench" / "tune_hint_spread.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    _, auto_path = _tiny_auto(tmp_path)
    _, hinted_path = _tiny_hint_checkpoint(tmp_path, auto_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    out, written = tmp_path / "rows.json", tmp_path / "spread.safetensors"
    assert bench.main([str(hinted_path), str(photos), "--counts", "1", "20", "--spreads", "0.5", "2",
                       "--lightness", "10", "--floors", "0.2", "--out", str(out), "--write", str(written)]) == 0
    result = json.loads(out.read_text())
    assert [r["hint_spread"] for r in result["rows"]] == [0.0, 0.5, 2.0]
    assert result["chosen"] == bench.choose(result["rows"], [1, 20])
    model, _ = load(written)
    assert model.config.hint_spread == result["chosen"]["hint_spread"]
    # The rule: CIEDE2000 no worse than spreading off at any count, then the highest mean PSNR.
    rows = [{"psnr1": 20, "ciede1": 9, "psnr2": 22, "ciede2": 8},
            {"psnr1": 25, "ciede1": 9.5, "psnr2": 26, "ciede2": 7},
            {"psnr1": 21, "ciede1": 8, "psnr2": 23, "ciede2": 7}]
    assert bench.choose(rows, [1, 2]) is rows[2]
