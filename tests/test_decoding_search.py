"""The decoding search (tinct.evaluate.decoding_search) and the `tinct tune` command.

A tiny random bins-head tinctnet whose header names a folder of generated photos stands in for
a trained checkpoint: the search needs the held-out files behind its validation split, not
good colour. The selection rules are checked on hand-made rows whose outcome is known.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from conftest import make_sky_grass_photos
from tinct.evaluate import decoding_search as ds

GRAY = {"psnr": 20.0, "ciede2000": 10.0, "chroma_ratio": 0.0, "delta_cf": 30.0}


def _row(name: str, psnr: float, ciede2000: float, chroma_ratio: float = 0.9, delta_cf: float = 3.0) -> dict:
    return {"name": name, "psnr": psnr, "ciede2000": ciede2000, "chroma_ratio": chroma_ratio, "delta_cf": delta_cf}


# ---------------------------------------------------------------------------------------------
# the grid


def test_gates_always_start_with_no_gate_and_reject_malformed_pairs():
    assert ds.parse_gates("") == [(0.0, 0.0)]
    assert ds.parse_gates("0.4/0.7,0/0,0.5/0.8") == [(0.0, 0.0), (0.4, 0.7), (0.5, 0.8)]
    for bad in ("0.4", "0.4/0.7/0.9", "a/b"):
        with pytest.raises(ValueError, match="low/high"):
            ds.parse_gates(bad)
    with pytest.raises(ValueError, match="numbers"):
        ds.parse_floats("0.5,x")


def test_flips_parse_zero_and_one_only_and_sit_just_inside_sizes():
    assert ds.parse_flips("0") == [False] and ds.parse_flips("0,1") == [False, True]
    for bad in ("", "2", "0,yes", "true"):
        with pytest.raises(ValueError, match="0 \\(off\\) or 1 \\(on\\)"):
            ds.parse_flips(bad)
    grid = ds.decoding_grid([64, 96], [0.38, 0.8], [0.0], flips=[False, True])
    assert [(s["input_size"], s["flip_average"]) for s in grid] == [
        (64, False), (64, False), (64, True), (64, True), (96, False), (96, False), (96, True), (96, True)]


def test_grid_tries_gains_only_where_they_act_and_keeps_sizes_outermost():
    grid = ds.decoding_grid([64, 96], [0.38, 0.8], [0.0], floors=[0.0, 2.0], gains=[1.0, 1.5],
                           gates=ds.parse_gates("0.4/0.7"))
    # per size and T: no gate & no floor -> gain 1 only; each of the other 3 (gate, floor) pairs -> 2 gains
    assert len(grid) == 2 * 2 * (1 + 3 * 2)
    plain = [s for s in grid if s["chroma_floor"] == 0 and s["hue_gate_high"] == 0]
    assert {s["chroma_gain"] for s in plain} == {1.0}
    assert {s["chroma_gain"] for s in grid if s["chroma_floor"] > 0} == {1.0, 1.5}
    assert [s["input_size"] for s in grid] == sorted(s["input_size"] for s in grid)
    assert all(tuple(s) == ds.DECODING_KEYS for s in grid)


# ---------------------------------------------------------------------------------------------
# the selection rules


def test_the_first_rule_some_row_passes_decides_even_against_a_lower_ciede2000():
    meets_all = _row("all four", 21.0, 9.0)
    too_colourful = _row("delta-CF 7", 22.0, 8.0, delta_cf=7.0)  # fails rule 1 only on delta-CF
    chosen, rule = ds.choose([too_colourful, meets_all], GRAY)
    assert chosen is meets_all and rule == "meets all four targets"
    chosen, rule = ds.choose([too_colourful], GRAY)
    assert chosen is too_colourful and rule.startswith("PSNR >= gray + 0.1 dB")


def test_each_rule_in_turn():
    rules = ds.SelectionRules()
    at_gray_ciede = _row("ciede not below gray", 21.0, 10.0)  # rule 1 wants CIEDE2000 strictly below gray's
    assert ds.choose([at_gray_ciede], GRAY)[1].startswith("PSNR >=")
    low_psnr = _row("PSNR below gray + margin", 20.05, 9.0)
    assert ds.choose([low_psnr], GRAY)[1] == f"chroma ratio in [0.75, 1.2], delta-CF <= {rules.max_delta_cf}"
    low_psnr_vivid = _row("and delta-CF 9", 20.05, 9.0, delta_cf=9.0)
    assert ds.choose([low_psnr_vivid], GRAY)[1] == "chroma ratio in [0.75, 1.2]"
    sepia = _row("chroma ratio 0.5", 25.0, 5.0, chroma_ratio=0.5)
    assert ds.choose([sepia], GRAY)[1] == "no rule passed: lowest CIEDE2000 overall"
    # colour is kept before anything else: the sepia row loses to a worse one that keeps colour
    assert ds.choose([sepia, low_psnr_vivid], GRAY)[0] is low_psnr_vivid
    # the chroma-ratio bounds are inclusive, on both ends
    assert ds.choose([_row("1.2", 21.0, 9.0, chroma_ratio=1.2)], GRAY)[1] == "meets all four targets"
    assert ds.choose([_row("0.75", 21.0, 9.0, chroma_ratio=0.75)], GRAY)[1] == "meets all four targets"
    assert ds.choose([_row("1.21", 21.0, 9.0, chroma_ratio=1.21)], GRAY)[1].startswith("no rule")
    strict = ds.SelectionRules(min_chroma_ratio=0.95, psnr_margin=2.0, max_delta_cf=1.0)
    assert ds.choose([_row("a", 21.0, 9.0)], GRAY, strict)[1].startswith("no rule")


def test_ties_within_the_margin_go_to_the_highest_psnr():
    best = _row("lowest CIEDE2000", 21.0, 9.0)
    tied = _row("0.04 worse, higher PSNR", 21.5, 9.04)
    outside = _row("0.06 worse, highest PSNR", 25.0, 9.06)
    assert ds.choose([best, tied, outside], GRAY)[0] is tied
    assert ds.choose([best, tied, outside], GRAY, ds.SelectionRules(tie_margin=0.0))[0] is best
    assert ds.choose([best, tied, outside], GRAY, ds.SelectionRules(tie_margin=0.1))[0] is outside
    with pytest.raises(ValueError, match="no settings"):
        ds.choose([], GRAY)


# ---------------------------------------------------------------------------------------------
# scoring and writing, on a tiny checkpoint with held-out photo files


@pytest.fixture
def bins_checkpoint(tmp_path):
    """A random bins-head tinctnet (32 px, non-uniform class weights, so beta acts) whose header
    names 8 generated photos, 4 of them held out for validation."""
    from tinct.data import DataConfig
    from tinct.models import create_model, save_checkpoint

    photos = make_sky_grass_photos(tmp_path / "photos", 8)
    torch.manual_seed(0)
    model = create_model("tinctnet", width=4, input_size=32, head="bins")
    model.fit_statistics(torch.randn(5000, 2) * 30 + torch.tensor([10.0, 25.0]))
    data = DataConfig(sources=[str(photos)], size=32, val_fraction=0.5, cache_dir=None)
    extra = {"data_config": data.to_dict()}
    return save_checkpoint(tmp_path / "tiny-bins.safetensors", model, metrics={"val_loss": 1.5}, extra=extra)


def _held_out(checkpoint):
    from tinct.models import load

    model, info = load(checkpoint)
    return model, info, *ds.held_out_photos(info, progress=False)


def test_held_out_photos_are_the_validation_files_and_a_header_without_data_is_refused(bins_checkpoint):
    from tinct.color import cielab_lightness
    from tinct.io import read_rgb

    model, info, keys, photos, scorer = _held_out(bins_checkpoint)
    assert len(keys) == len(photos) == len(scorer.truths) == 4 and keys == sorted(keys)
    assert all(k.startswith("photos/photo_") for k in keys)
    folder = bins_checkpoint.parent / "photos"
    truth = read_rgb(folder / keys[0].split("/", 1)[1])
    assert np.array_equal(scorer.truths[0], truth)
    assert np.array_equal(photos[0].lightness, cielab_lightness(truth))
    assert len(ds.held_out_photos(info, limit=2, progress=False)[0]) == 2
    with pytest.raises(ValueError, match="records no training data"):
        ds.held_out_photos(dataclasses.replace(info, extra={}))


def test_each_row_scores_what_tinct_colorize_would_give_and_the_model_is_not_changed(bins_checkpoint):
    from tinct.infer import Colorizer
    from tinct.models import load

    model, info, keys, photos, scorer = _held_out(bins_checkpoint)
    before = model.config
    grid = ds.decoding_grid([32, 48], [0.1, 1.0], [0.0, 1.0], gates=ds.parse_gates("0.2/0.6"), flips=[False, True])
    rows = ds.score_grid(model, photos, scorer, grid, progress=False)
    assert model.config is before and model.config == load(bins_checkpoint)[0].config
    assert [{k: r[k] for k in ds.DECODING_KEYS} for r in rows] == grid
    for index in (0, 5, 8, len(grid) - 1):  # first, middle, first mirror-averaged, last (another size)
        fresh, _ = load(bins_checkpoint)
        for key in ds.DECODING_KEYS:
            setattr(fresh.config, key, grid[index][key])
        outputs = [Colorizer(fresh, threads=1, engine="torch").colorize_photo(p) for p in photos]
        expected = scorer(outputs)
        assert {k: rows[index][k] for k in expected} == pytest.approx(expected, rel=1e-6, abs=1e-9)
    # the decoding really changes between settings: T, beta and the gate each move the chroma
    ratios = {(r["input_size"], r["temperature"], r["prior_correction"], r["hue_gate_high"]): r["chroma_ratio"]
              for r in rows}
    assert ratios[(32, 0.1, 0.0, 0.0)] != pytest.approx(ratios[(32, 1.0, 0.0, 0.0)])
    assert ratios[(32, 0.1, 0.0, 0.0)] != pytest.approx(ratios[(32, 0.1, 1.0, 0.0)])
    assert ratios[(32, 0.1, 0.0, 0.0)] != pytest.approx(ratios[(32, 0.1, 0.0, 0.6)])
    assert grid[8] == {**grid[0], "flip_average": True}  # the same decoding of the mirror-averaged output
    assert rows[8]["psnr"] != pytest.approx(rows[0]["psnr"], rel=1e-9)


def test_the_tuned_checkpoint_carries_the_choice_and_the_search_and_the_source_is_untouched(bins_checkpoint):
    from tinct.models import load

    model, info, keys, photos, scorer = _held_out(bins_checkpoint)
    source_bytes = bins_checkpoint.read_bytes()
    grid = ds.decoding_grid([48], [0.2, 0.9], [0.0, 0.5])
    search = ds.search_decoding(model, photos, scorer, grid, progress=False)
    assert search.chosen == ds.choose(search.rows, scorer.gray())[0] and search.chosen in search.rows
    target = bins_checkpoint.parent / "tuned.safetensors"
    ds.write_tuned_checkpoint(target, model, info, search, storage="float16")
    assert bins_checkpoint.read_bytes() == source_bytes
    assert model.config.input_size == 32 and model.config.temperature == load(bins_checkpoint)[0].config.temperature
    tuned, written = load(target)
    for key in ds.DECODING_KEYS:
        assert getattr(tuned.config, key) == search.chosen[key]
    assert tuned.config.width == model.config.width
    record = written.metrics["decoding_tuning"]["validation_photos"]
    assert record["photos"] == 4 and record["rule"] == search.rule and len(record["all"]) == len(grid)
    assert record["chosen"] == pytest.approx(search.chosen) and record["gray"] == pytest.approx(scorer.gray())
    assert written.metrics["val_loss"] == 1.5 and written.extra == info.extra
    for name, tensor in model.state_dict().items():
        assert torch.allclose(tuned.state_dict()[name], tensor, rtol=1e-3, atol=1e-3), name
    # the earlier search's rows come back for --previous, on the same photos only
    assert ds.previous_rows(target, 4, scorer.gray()) == record["all"]
    with pytest.raises(ValueError, match="other held-out photos"):
        ds.previous_rows(target, 3, scorer.gray())
    with pytest.raises(ValueError, match="other held-out photos"):
        ds.previous_rows(target, 4, {**scorer.gray(), "ciede2000": scorer.gray()["ciede2000"] + 0.01})
    with pytest.raises(ValueError, match="records no decoding search"):
        ds.previous_rows(bins_checkpoint, 4, scorer.gray())


# ---------------------------------------------------------------------------------------------
# the command


def test_tinct_tune_writes_a_new_checkpoint_and_joins_a_previous_search(bins_checkpoint, capsys):
    from tinct.cli import main
    from tinct.models import read_checkpoint_info

    first = bins_checkpoint.parent / "first.safetensors"
    common = [str(bins_checkpoint), "--no-progress", "--corrections", "0"]
    assert main(["tune", *common, "--temperatures", "0.2,0.9", "--out", str(first)]) == 0
    printed = capsys.readouterr().out
    assert "4 held-out photos; gray baseline: " in printed and f"wrote {first}" in printed
    assert len([line for line in printed.splitlines() if line.startswith("size=32 ")]) == 2
    result = json.loads(printed.strip().splitlines()[-1])
    recorded = read_checkpoint_info(first)["metrics"]["decoding_tuning"]["validation_photos"]
    assert result["chosen"] == pytest.approx(recorded["chosen"]) and recorded["rule"] in printed

    second = bins_checkpoint.parent / "second.safetensors"
    assert main(["tune", *common, "--temperatures", "0.5", "--sizes", "48", "--previous", str(first),
                 "--out", str(second)]) == 0
    assert f"2 settings of {first} join the 1 of this grid" in capsys.readouterr().out
    rows = read_checkpoint_info(second)["metrics"]["decoding_tuning"]["validation_photos"]["all"]
    assert [(r["input_size"], r["temperature"]) for r in rows] == [(32, 0.2), (32, 0.9), (48, 0.5)]


def test_tinct_tune_refuses_what_it_cannot_tune(bins_checkpoint, tmp_path, capsys):
    from tinct.cli import main
    from tinct.models import create_model, save_checkpoint

    regression = save_checkpoint(tmp_path / "regression.safetensors",
                                 create_model("tinctnet", width=4, input_size=32, head="regression"))
    assert main(["tune", str(regression), "--no-progress"]) == 2
    assert capsys.readouterr().err == f"tinct tune: {regression}: not a bins-head model; nothing to tune\n"
    no_data = save_checkpoint(tmp_path / "no-data.safetensors", create_model("tinctnet", width=4, input_size=32))
    assert main(["tune", str(no_data), "--no-progress"]) == 2
    assert "records no training data" in capsys.readouterr().err
    assert main(["tune", str(bins_checkpoint), "--hue-gates", "0.4", "--no-progress"]) == 2
    assert "low/high pairs" in capsys.readouterr().err
    assert main(["tune", str(bins_checkpoint), "--out", str(tmp_path / "x.pt")]) == 2
    assert capsys.readouterr().err == f"tinct tune: --out {tmp_path / 'x.pt'}: checkpoints are .safetensors files\n"
    assert not (tmp_path / "x.pt").exists()
