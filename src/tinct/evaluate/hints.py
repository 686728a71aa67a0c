"""How much a user's hints help: PSNR and CIEDE2000 against the number of point hints.

For each photo of a benchmark folder, hints are sampled from the truth with a fixed seed
(:func:`tinct.hints.hints_from_truth`: uniform positions, the truth's mean colour over a 5x5
square), the hint model colorizes the truth's own CIELAB lightness with 0, 1, 2, 5, ... hints,
and each result is scored against the truth. With ``reference="truth"`` the truth's ab
histogram is given too (the best reference photo there can be). The gray baseline and the
automatic model are scored on the same photos, so the curve is read beside them.

    tinct evaluate --model tinct-v2-hints --data ../shared/data/cbsd68 --hints 10 --out reports/hints
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

HINT_COUNTS = (0, 1, 2, 5, 10, 20, 50, 100)
MATCH_WORDS = {  # what the report says a reference set, by reference_match
    "histogram": "",
    "colorfulness": ", results as colourful as the reference",
    "colors": ", results given the reference's colour mean, spread and colourfulness",
}


@dataclass
class HintCurve:
    """Mean metrics per number of hints (``rows[n] = {"psnr": .., "ciede2000": .., ...}``),
    and the gray baseline's and the automatic model's on the same photos."""

    model: str
    automatic: str
    photos: int
    seed: int
    reference: str | None
    reference_match: str = "histogram"
    rows: dict[int, dict[str, float]] = field(default_factory=dict)
    gray: dict[str, float] = field(default_factory=dict)
    auto: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        data = dict(vars(self))
        data["rows"] = {str(k): v for k, v in self.rows.items()}
        return json.dumps(data, indent=1)


def _scores(outputs: list[np.ndarray], truths: list[np.ndarray]) -> dict[str, float]:
    from tinct import metrics

    chroma = [metrics.mean_chroma(o) for o in outputs]
    truth_chroma = [metrics.mean_chroma(t) for t in truths]
    return {
        "psnr": float(np.mean([metrics.psnr(o, t) for o, t in zip(outputs, truths)])),
        "ciede2000": float(np.mean([metrics.ciede2000(o, t) for o, t in zip(outputs, truths)])),
        "delta_cf": metrics.delta_colorfulness([metrics.colorfulness(o) for o in outputs],
                                               [metrics.colorfulness(t) for t in truths]),
        "chroma_ratio": metrics.chroma_ratio(chroma, truth_chroma),
    }


def _check_request(counts: Sequence[int], reference: str | None, reference_match: str | None) -> str:
    """The reference match to use (None: the default); ValueError for a request out of range."""
    from tinct.hints import REFERENCE_MATCH, check_reference_match

    match = REFERENCE_MATCH if reference_match is None else reference_match
    check_reference_match(match)
    if reference not in (None, "truth"):
        raise ValueError(f"reference must be 'truth' or None, got {reference!r}")
    if not counts or min(counts) < 0:
        raise ValueError(f"numbers of hints must be at least 0, got {list(counts)}")
    return match


def evaluate_hints(
    model: str,
    data: str | Path,
    counts: Sequence[int] = HINT_COUNTS,
    seed: int = 0,
    reference: str | None = None,
    automatic: str = "default",
    reference_match: str | None = None,
    allow_train_data: bool = False,
    limit: int | None = None,
    progress: bool = True,
    threads: int | None = None,  # default: all cores available
) -> HintCurve:
    """Score ``model`` (a hint model) with each number of ``counts`` hints per photo.

    Args:
        model: shipped name, checkpoint or run folder of a model trained with hints.
        data: a folder of colour truth photos held out from the model's training (one it records
            as training data is refused unless ``allow_train_data``); ``limit``: first photos only.
        counts: numbers of hints; each photo's hints for ``n`` are the first ``n`` of one
            sample of ``max(counts)`` (so a larger set adds points to a smaller one).
        seed: the sampling seed (photo ``i`` uses ``seed + i``).
        reference: ``"truth"`` to give each photo its truth's histogram, or None.
        automatic: the automatic model scored beside (default: the shipped default).
        reference_match: with the reference, what else it sets (:data:`tinct.hints.REFERENCE_MATCHES`;
            None: :data:`tinct.hints.REFERENCE_MATCH`); ``threads``: CPU threads of both models.
    """
    from tqdm import tqdm

    from tinct.color import cielab_lightness
    from tinct.evaluate.runner import EvaluationError, check_held_out
    from tinct.evaluate.scoring import gray_baseline
    from tinct.hints import colorize_with_hints, hints_from_truth, require_hint_model
    from tinct.infer import Colorizer
    from tinct.io import Photo, list_images, read_rgb

    match = _check_request(counts, reference, reference_match)
    photos = list_images(data)[:limit]
    if not photos:
        raise EvaluationError(f"{data}: no photos to evaluate hints on")
    hinted = Colorizer(model, engine="torch", threads=threads)
    require_hint_model(hinted)  # before any work
    check_held_out(Path(data), hinted.checkpoint, hinted.name, allow_train_data)
    auto = Colorizer(automatic, threads=threads)
    truths, grays, autos = [], [], []
    outputs: dict[int, list[np.ndarray]] = {n: [] for n in counts}
    for index, path in enumerate(tqdm(photos, desc="hints", disable=not progress, leave=False)):
        truth = read_rgb(path)
        photo = Photo(lightness=cielab_lightness(truth), source=Path(path))
        sample = hints_from_truth(truth, max(counts), seed=seed + index)
        for n in counts:
            outputs[n].append(colorize_with_hints(hinted, photo, sample[:n], truth if reference else None,
                                                  reference_match=match))
        truths.append(truth)
        grays.append(gray_baseline(truth))
        autos.append(auto.colorize_photo(photo))
    curve = HintCurve(hinted.name, auto.name, len(truths), seed, reference, match if reference else "histogram")
    curve.rows = {n: _scores(outputs[n], truths) for n in counts}
    curve.gray, curve.auto = _scores(grays, truths), _scores(autos, truths)
    return curve


def plot_hint_curve(curve: HintCurve, path: str | Path) -> Path:
    """PSNR and CIEDE2000 against the number of hints, gray and automatic as lines; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = sorted(curve.rows)
    x = [max(n, 0.5) for n in counts]  # 0 hints drawn at 0.5 on the log axis
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((axes[0], "psnr", "PSNR (dB, higher is better)"),
                           (axes[1], "ciede2000", "CIEDE2000 (lower is better)")):
        ax.plot(x, [curve.rows[n][key] for n in counts], "o-", color="tab:blue", label=curve.model)
        ax.axhline(curve.auto[key], color="tab:orange", linestyle="--", label=f"{curve.automatic} (automatic)")
        ax.axhline(curve.gray[key], color="gray", linestyle=":", label="gray baseline")
        ax.set_xscale("log")
        ax.set_xticks(x, [str(n) for n in counts])
        ax.set_xlabel("hints per photo" + (" (and the truth as reference)" if curve.reference else ""))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{curve.model} on {curve.photos} photos, hints sampled from the truth (seed {curve.seed})", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def hint_table(curve: HintCurve) -> str:
    """A markdown table of the curve, gray and automatic rows last."""
    lines = ["| hints | PSNR (dB) | CIEDE2000 | delta-CF | chroma ratio |", "|---:|---:|---:|---:|---:|"]
    for n in sorted(curve.rows):
        r = curve.rows[n]
        lines.append(f"| {n} | {r['psnr']:.3f} | {r['ciede2000']:.3f} | {r['delta_cf']:.2f} | {r['chroma_ratio']:.3f} |")
    for name, r in ((f"{curve.automatic} (automatic)", curve.auto), ("gray baseline", curve.gray)):
        lines.append(f"| {name} | {r['psnr']:.3f} | {r['ciede2000']:.3f} | {r['delta_cf']:.2f} | {r['chroma_ratio']:.3f} |")
    return "\n".join(lines)


def write_hint_report(curve: HintCurve, folder: str | Path) -> Path:
    """``hints.json``, ``hints.png`` and ``hints.md`` in ``folder``, each written whole or not at
    all; returns the markdown's path. A file that cannot be written (a full disk) is an
    :class:`~tinct.evaluate.runner.EvaluationError` naming it."""
    from tinct.evaluate.runner import EvaluationError
    from tinct.io import write_text_atomic

    folder = Path(folder)
    text = (f"# Hints: {curve.model}\n\n{curve.photos} photos, seed {curve.seed}"
            f"{', truth histogram as reference' if curve.reference else ''}"
            f"{MATCH_WORDS[curve.reference_match] if curve.reference else ''}.\n\n![](hints.png)\n\n{hint_table(curve)}\n")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "hints.json", curve.to_json())
        plot_hint_curve(curve, folder / "hints.png")
        write_text_atomic(folder / "hints.md", text)
    except OSError as exc:
        raise EvaluationError(f"{exc.filename or folder}: cannot write the hint report ({exc.strerror or exc})") from None
    return folder / "hints.md"
