"""The release step of a bins-head checkpoint: search its decoding on its own held-out photos,
pick one setting by pre-registered rules, and write it into a new checkpoint.

    tinct tune runs/tinct-w32-e12/best.safetensors --out src/tinct/weights/tinct-v1.safetensors --storage float16

A decoding setting is the working resolution ``input_size`` (pixels, a multiple of 16), whether
the network's output is averaged with that of the mirrored photo ``flip_average``, the
annealed-mean temperature ``temperature`` T, the prior correction ``prior_correction`` beta, the
chroma floor ``chroma_floor`` c0 (Lab units) and gain ``chroma_gain`` k, and the hue-confidence
gate ``hue_gate_low``/``hue_gate_high`` (see :data:`DECODING_KEYS`). T trades vividness against
fidelity (T -> 0 decodes the most likely colour: vivid, blotchy; T = 1 the mean: safe,
brownish); beta removes a share of the training-time rebalancing (0 vivid, 1 faithful); each
decoded chroma c becomes k * max(c - c0, 0) (faint tints go gray, confident colours get
stronger); the gate scales each pixel's colour by clip((R - low) / (high - low), 0, 1), R the
concentration of its predicted hues; a larger working resolution gives finer colour at a
higher cost per photo; the mirror average costs a second network run and steadies colour
that the network is unsure of.

The photos are the *whole* files behind the checkpoint's validation split (photos of its
training folders that training never saw), colorized the way ``tinct colorize`` does it: each
truth's own CIELAB L resized to the working resolution, ab predicted, upsampled and joined to
the full-resolution L (:func:`held_out_photos`, :func:`score_grid`). Each setting is scored by
PSNR, mean CIEDE2000, chroma ratio and delta-CF next to the gray baseline's, and
:func:`choose` picks, by the first rule of :meth:`SelectionRules.rules` that some setting
passes, the lowest CIEDE2000 (settings within ``tie_margin`` of it count as tied, and the tie
goes to the highest PSNR) among the settings that

1. meet all four quality targets: PSNR >= gray + ``psnr_margin`` dB, CIEDE2000 below gray's,
   delta-CF <= ``max_delta_cf``, chroma ratio in [``min_chroma_ratio``, 1.2];
2. meet the PSNR and chroma-ratio conditions;
3. meet the chroma-ratio and delta-CF conditions (the two colour targets);
4. meet the chroma-ratio condition (colour is kept: a sepia or gray model fails users first);
5. anything (last resort).

The margins (0.1 dB, 0.75 rather than the 0.7 of the targets) leave room for the difference
between these photos and others. :func:`write_tuned_checkpoint` writes a copy of the
checkpoint whose config carries the chosen setting and whose metrics record the whole grid
(``metrics.decoding_tuning.validation_photos``); the model passed in is never changed.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinct.models.checkpoint import CheckpointInfo

__all__ = [
    "DECODING_KEYS",
    "MAX_CHROMA_RATIO",
    "DecodingSearch",
    "SelectionRules",
    "choose",
    "decoding_grid",
    "describe",
    "held_out_photos",
    "parse_flips",
    "parse_floats",
    "parse_gates",
    "previous_rows",
    "score_grid",
    "search_decoding",
    "with_decoding",
    "write_tuned_checkpoint",
]

# The config fields a setting holds, in the order rows and tables list them.
DECODING_KEYS = ("input_size", "flip_average", "temperature", "prior_correction", "chroma_floor", "chroma_gain",
                 "hue_gate_low", "hue_gate_high")
MAX_CHROMA_RATIO = 1.2  # upper end of the admissible chroma ratio (output chroma / truth chroma)

Row = dict[str, Any]  # a setting (DECODING_KEYS) followed by its scores (psnr, ciede2000, ...)


def parse_floats(text: str) -> list[float]:
    """``"0.38,0.5"`` -> ``[0.38, 0.5]``; raises ValueError naming the text on a bad number."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers such as 0.38,0.5, got {text!r}") from None


def parse_flips(text: str) -> list[bool]:
    """``"0,1"`` -> ``[False, True]``; raises ValueError naming the text on anything but 0 and 1."""
    values = [v.strip() for v in text.split(",")]
    if not values or any(v not in ("0", "1") for v in values):
        raise ValueError(f"mirror averaging is 0 (off) or 1 (on), comma-separated such as 0,1, got {text!r}")
    return [v == "1" for v in values]


def parse_gates(text: str) -> list[tuple[float, float]]:
    """``"0.4/0.7,0.5/0.8"`` -> ``[(0, 0), (0.4, 0.7), (0.5, 0.8)]``: (0, 0), no gate, always comes first."""
    try:
        pairs = [tuple(float(v) for v in pair.split("/")) for pair in text.split(",") if pair]
    except ValueError:
        pairs = [()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"hue gates are low/high pairs such as 0.4/0.7, got {text!r}")
    return [(0.0, 0.0)] + [p for p in pairs if p != (0.0, 0.0)]


def decoding_grid(
    sizes: Sequence[int],
    temperatures: Sequence[float],
    corrections: Sequence[float],
    floors: Sequence[float] = (0.0,),
    gains: Sequence[float] = (1.0,),
    gates: Sequence[tuple[float, float]] = ((0.0, 0.0),),
    flips: Sequence[bool] = (False,),
) -> list[Row]:
    """Every setting of the grid, sizes and then mirror averaging outermost (the network then
    runs once per size and mirror choice).

    Gains other than 1 are tried only where they act: with a chroma floor > 0 or a hue gate;
    the plain annealed mean keeps gain 1. ``gates`` as :func:`parse_gates` returns them.
    """
    return [
        {"input_size": int(s), "flip_average": bool(flip), "temperature": t, "prior_correction": c, "chroma_floor": f, "chroma_gain": g,
         "hue_gate_low": low, "hue_gate_high": high}
        for s in sizes
        for flip in flips
        for c in corrections
        for t in temperatures
        for low, high in gates
        for f in floors
        for g in (gains if f > 0 or high > 0 else [1.0])
    ]


def describe(setting: Row) -> str:
    """One fixed-width line naming a setting, e.g. ``size=192  T=0.38  beta=0.25 ...``."""
    return (f"size={setting['input_size']:<4} {'flip' if setting.get('flip_average') else 'one ':<4} "
            f"T={setting['temperature']:<5} beta={setting['prior_correction']:<5} "
            f"c0={setting['chroma_floor']:<4} k={setting['chroma_gain']:<4} "
            f"gate={setting['hue_gate_low']}/{setting['hue_gate_high']:<4}")


def held_out_photos(info: CheckpointInfo, limit: int = 0, progress: bool = True):
    """``(keys, photos, scorer)`` for the whole photos behind a checkpoint's validation split.

    ``info`` is the checkpoint's :class:`~tinct.models.CheckpointInfo` (:func:`tinct.models.load`
    returns it), whose ``extra.data_config`` names the training data. ``keys`` are the sorted photo names (at most
    ``limit`` of them, 0 = all), ``photos`` their :class:`tinct.io.Photo` (the truth's own
    CIELAB L, 0-100), ``scorer`` a :class:`tinct.evaluate.scoring.TargetScorer` holding the
    uint8 RGB truths. Raises ValueError when the checkpoint records no training data or its
    validation photos are arrays, not files.
    """
    from tqdm import tqdm

    from tinct.color import cielab_lightness
    from tinct.data import DataConfig, make_splits
    from tinct.evaluate.scoring import TargetScorer
    from tinct.io import Photo, read_rgb

    data_config = info.extra.get("data_config")
    if not data_config:
        raise ValueError("this checkpoint records no training data (extra.data_config), so it has no held-out photos")
    val = make_splits(DataConfig.from_dict(data_config), seed=0)["val"]
    records = val.photo_records()[: limit or None]
    if any(r.path is None for r in records):
        raise ValueError("this checkpoint's validation photos are arrays, not files; tune on crops instead")
    if not records:
        raise ValueError("this checkpoint's validation split holds no photos")
    truths = [read_rgb(r.path) for r in tqdm(records, desc="reading held-out photos", leave=False, disable=not progress)]
    photos = [Photo(lightness=cielab_lightness(t)) for t in truths]
    return [r.key for r in records], photos, TargetScorer(truths)


def with_decoding(model, setting: Row):
    """A shallow copy of ``model`` (sharing its weights) whose config carries ``setting``.

    ``setting`` maps some of :data:`DECODING_KEYS` to values (extra keys, such as scores,
    are ignored); ``model`` and its config are left unchanged.
    """
    view = copy.copy(model)
    view.config = dataclasses.replace(model.config, **{k: setting[k] for k in DECODING_KEYS if k in setting})
    return view


def _network_outputs(model, photos, threads: int) -> list:
    """Per photo, the network's output at the model's working size (mirror-averaged if its
    config says so) and its content box."""
    import torch

    from tinct.infer import Colorizer

    colorizer = Colorizer(model, threads=threads)
    outputs = []
    with torch.inference_mode():
        for photo in photos:
            squares, boxes = colorizer.working_squares([photo])
            outputs.append((model.test_time_output(torch.from_numpy(squares)), boxes[0]))
    return outputs


def _score_setting(model, photos, scorer, outputs, threads: int) -> dict[str, float]:
    """Decode the cached network outputs with ``model``'s config, compose and score them."""
    import torch

    from tinct.infer import Colorizer

    colorizer = Colorizer(model, threads=threads)
    with torch.inference_mode():
        abs_ = [colorizer.crop_to_content(model.decode(out), [box])[0] for out, box in outputs]
    return scorer([colorizer.compose(p, ab) for p, ab in zip(photos, abs_)])


def score_grid(model, photos, scorer, grid: Sequence[Row], threads: int = 1, progress: bool = True) -> list[Row]:
    """One row per setting of ``grid``: the setting followed by ``scorer``'s scores of the photos.

    ``photos`` are :class:`tinct.io.Photo` (CIELAB L, 0-100, full resolution), colorized as
    ``tinct colorize`` would with each setting; the network runs once per working size (keep
    sizes and mirror choices outermost, as :func:`decoding_grid` does). ``model`` is not changed.
    """
    from tqdm import tqdm

    rows, outputs, outputs_for = [], None, None
    for setting in tqdm(grid, desc="settings", leave=False, disable=not progress):
        view = with_decoding(model, setting)
        network = (setting["input_size"], setting.get("flip_average", False))
        if network != outputs_for:
            outputs, outputs_for = _network_outputs(view, photos, threads), network
        row = {**setting, **_score_setting(view, photos, scorer, outputs, threads)}
        rows.append(row)
        line = describe(setting) + "  " + ", ".join(f"{k} {v:.3f}" for k, v in list(row.items())[len(setting):])
        tqdm.write(line) if progress else print(line)
    return rows


@dataclass(frozen=True)
class SelectionRules:
    """The pre-registered rules that pick one setting (see the module's description).

    Attributes:
        min_chroma_ratio: lower end of the admissible chroma ratio (upper end 1.2).
        psnr_margin: dB above the gray baseline's PSNR required.
        max_delta_cf: largest admissible delta colourfulness.
        tie_margin: settings within this much of the lowest admissible CIEDE2000 count as
            tied; the tie goes to the highest PSNR (0: lowest CIEDE2000 alone).
    """

    min_chroma_ratio: float = 0.75
    psnr_margin: float = 0.1
    max_delta_cf: float = 6.0
    tie_margin: float = 0.05

    def rules(self, gray: dict[str, float]) -> list[tuple[str, Callable[[Row], bool]]]:
        """``(description, passes(row))`` in order of preference; the last passes every row."""
        low = self.min_chroma_ratio

        def colour_kept(r: Row) -> bool:
            return low <= r["chroma_ratio"] <= MAX_CHROMA_RATIO

        def psnr_kept(r: Row) -> bool:
            return r["psnr"] >= gray["psnr"] + self.psnr_margin

        return [
            ("meets all four targets", lambda r: psnr_kept(r) and colour_kept(r)
             and r["ciede2000"] < gray["ciede2000"] and r["delta_cf"] <= self.max_delta_cf),
            (f"PSNR >= gray + {self.psnr_margin} dB, chroma ratio in [{low}, {MAX_CHROMA_RATIO}]",
             lambda r: psnr_kept(r) and colour_kept(r)),
            (f"chroma ratio in [{low}, {MAX_CHROMA_RATIO}], delta-CF <= {self.max_delta_cf}",
             lambda r: colour_kept(r) and r["delta_cf"] <= self.max_delta_cf),
            (f"chroma ratio in [{low}, {MAX_CHROMA_RATIO}]", colour_kept),
            ("no rule passed: lowest CIEDE2000 overall", lambda r: True),
        ]


def choose(rows: Sequence[Row], gray: dict[str, float], rules: SelectionRules = SelectionRules()) -> tuple[Row, str]:
    """``(chosen row, description of the rule it passed)``; raises ValueError on no rows.

    The first rule that some row passes decides the admissible rows; among them, those within
    ``rules.tie_margin`` of the lowest CIEDE2000 are tied and the highest PSNR wins (the first
    such row in ``rows`` on an exact tie).
    """
    if not rows:
        raise ValueError("no settings to choose from")
    for rule, passes in rules.rules(gray):
        admissible = [r for r in rows if passes(r)]
        if admissible:
            break
    best = min(r["ciede2000"] for r in admissible)
    chosen = max((r for r in admissible if r["ciede2000"] <= best + rules.tie_margin), key=lambda r: r["psnr"])
    return chosen, rule


@dataclass
class DecodingSearch:
    """The outcome of a search: what :func:`write_tuned_checkpoint` records.

    Attributes:
        photos: number of held-out photos scored.
        gray: the gray baseline's scores on them.
        chosen: the chosen row (setting and scores).
        rule: description of the rule that chose it.
        rows: every row considered (an earlier search's first, with ``previous``).
    """

    photos: int
    gray: dict[str, float]
    chosen: Row
    rule: str
    rows: list[Row]

    def record(self) -> dict[str, Any]:
        """The checkpoint's ``metrics.decoding_tuning`` entry."""
        return {"validation_photos": {"photos": self.photos, "gray": self.gray, "chosen": self.chosen,
                                      "rule": self.rule, "all": self.rows}}


def previous_rows(path: str | os.PathLike, photos: int, gray: dict[str, float]) -> list[Row]:
    """The rows recorded by an earlier search in checkpoint ``path`` (read from its header).

    Raises ValueError when it recorded no search, or one on other held-out photos (another
    count or another gray CIEDE2000). Rows recorded before mirror averaging existed get
    ``flip_average`` False (how they were scored).
    """
    from tinct.models import read_checkpoint_info, resolve_model_path

    metrics = read_checkpoint_info(resolve_model_path(path)).get("metrics", {})
    earlier = metrics.get("decoding_tuning", {}).get("validation_photos")
    if earlier is None:
        raise ValueError(f"{path}: records no decoding search (metrics.decoding_tuning)")
    if earlier["photos"] != photos or abs(earlier["gray"]["ciede2000"] - gray["ciede2000"]) > 1e-9:
        raise ValueError(f"{path}: its search ran on other held-out photos")
    return [{"flip_average": False, **row} for row in earlier["all"]]


def search_decoding(
    model, photos, scorer, grid: Sequence[Row], rules: SelectionRules = SelectionRules(),
    earlier: Sequence[Row] = (), threads: int = 1, progress: bool = True,
) -> DecodingSearch:
    """Score ``grid`` on the photos (:func:`score_grid`) and :func:`choose` among the rows,
    ``earlier`` ones (e.g. :func:`previous_rows`) listed first. ``model`` is not changed."""
    gray = scorer.gray()
    rows = list(earlier) + score_grid(model, photos, scorer, grid, threads, progress)
    chosen, rule = choose(rows, gray, rules)
    return DecodingSearch(len(photos), gray, chosen, rule, rows)


def write_tuned_checkpoint(
    path: str | os.PathLike, model, info: CheckpointInfo, search: DecodingSearch, storage: str = "float32"
) -> Path:
    """Write ``model``'s weights to a new checkpoint whose config carries ``search.chosen``.

    ``info`` is the source checkpoint's :class:`~tinct.models.CheckpointInfo`: its data manifest, metrics and extra are kept,
    and ``metrics.decoding_tuning`` records the search. ``storage`` is ``"float32"`` or
    ``"float16"``. ``model`` is not changed. Returns the path written.
    """
    from tinct.models import save_checkpoint

    return save_checkpoint(
        path,
        with_decoding(model, search.chosen),
        data_manifest_sha256=info.data_manifest_sha256,
        metrics={**info.metrics, "decoding_tuning": search.record()},
        extra=info.extra,
        storage=storage,
    )
