"""Report folders: the printed table, ``metrics.csv``, ``summary.json``, comparison images,
histograms and one self-contained ``index.html`` (relative links only, no scripts, no CDN).

A report folder is never overwritten: :func:`new_report_dir` refuses an existing folder.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import math
import re
import shutil
import time
from pathlib import Path

import numpy as np

from tinct import __version__
from tinct.evaluate.runner import BASELINE_NAME, Evaluation, EvaluationError
from tinct.evaluate.scoring import METRICS, SET_METRICS, Metric, summarize
from tinct.metrics import SSIM_SETTINGS
from tinct.metrics.direction import phrase, short_label

__all__ = [
    "format_value",
    "format_table",
    "summary_dict",
    "default_report_dir",
    "new_report_dir",
    "report_folder",
    "write_file",
    "write_report",
    "ReportExistsError",
    "refuse_existing_report",
]


class ReportExistsError(EvaluationError, FileExistsError):
    """The report folder asked for exists; reports are never overwritten. An
    :class:`EvaluationError` (so a :class:`~tinct.errors.TinctError`) and still the
    ``FileExistsError`` it was before, for callers that catch that."""


def refuse_existing_report(path: str | Path | None) -> None:
    """:class:`ReportExistsError` when the report folder ``path`` exists (None: a default
    folder will be chosen, nothing to check). Every report writer and command calls this
    before any work or writing."""
    if path is not None and Path(path).exists():
        raise ReportExistsError(f"{path}: already exists; reports are never overwritten (choose another --out)")


def format_value(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def present_per_image_metrics(evaluation: Evaluation, headline_only: bool) -> list[Metric]:
    keys = set(evaluation.systems[0].rows[0]) if evaluation.systems and evaluation.systems[0].rows else set()
    return [m for m in METRICS if m.key in keys and (m.headline or not headline_only)]


def present_set_metrics(evaluation: Evaluation) -> list[Metric]:
    keys = set(evaluation.systems[0].set_scores) if evaluation.systems else set()
    return [m for m in SET_METRICS if m.key in keys]


def title_of(evaluation: Evaluation) -> str:
    names = ", ".join(s.name for s in evaluation.systems if s.kind != "baseline")
    what = {"model": "model", "predictions": "outputs", "compare": "models"}[evaluation.mode]
    return f"{what} {names} on {evaluation.data.name or evaluation.data} ({len(evaluation.images)} images)"


def format_table(evaluation: Evaluation) -> str:
    """The terminal table: every headline metric with each system's row, the baseline's beside it."""
    systems = evaluation.systems
    name_width = max(13, *(len(s.name) for s in systems))
    label_width = max(len(m.label) for m in METRICS + SET_METRICS) + 2
    columns = " ".join(f"{c:>10}" for c in ("mean", "std", "min", "max"))
    header = f"{'metric':<{label_width}} {'better':<7} {'system':<{name_width}} {columns}"
    lines = [title_of(evaluation), "", header, "-" * len(header)]
    stats = {s.name: s.stats() for s in systems}
    for metric in present_per_image_metrics(evaluation, headline_only=True):
        for i, system in enumerate(systems):
            st = stats[system.name][metric.key]
            label = metric.label if i == 0 else ""
            better = short_label(metric.better) if i == 0 else ""
            cells = " ".join(f"{format_value(v, metric.digits):>10}" for v in (st.mean, st.std, st.min, st.max))
            lines.append(f"{label:<{label_width}} {better:<7} {system.name:<{name_width}} {cells}")
    set_metrics = present_set_metrics(evaluation)
    if set_metrics:
        lines += ["", "set-level (one value for the whole set)"]
        for metric in set_metrics:
            for i, system in enumerate(systems):
                label = metric.label if i == 0 else ""
                better = short_label(metric.better) if i == 0 else ""
                value = format_value(system.set_scores.get(metric.key), metric.digits)
                lines.append(f"{label:<{label_width}} {better:<7} {system.name:<{name_width}} {value:>10}")
    truth_cf = summarize(t["colorfulness"] for t in evaluation.truths)
    truth_chroma = summarize(t["mean_chroma"] for t in evaluation.truths)
    lines += ["", f"truths: colourfulness mean {truth_cf.mean:.3f}, mean chroma {truth_chroma.mean:.3f}"]
    for system in systems:
        if system.seconds:
            lines.append(f"{system.name}: {system.seconds_per_image:.4f} s per image (colorization only), "
                         f"{system.parameters:,} parameters")
    lines += [f"note: {note}" for note in evaluation.notes]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _json_safe(value):
    """JSON has no inf/nan: write them as the strings "inf", "-inf" and null."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def summary_dict(evaluation: Evaluation) -> dict:
    """Everything in ``summary.json``."""
    systems = []
    for system in evaluation.systems:
        systems.append(
            {
                "name": system.name,
                "kind": system.kind,
                "source": system.source,
                "parameters": system.parameters,
                "seconds_per_image": system.seconds_per_image,
                "held_out": system.held_out or None,
                "per_image": {k: v.as_dict() for k, v in system.stats().items()},
                "set": dict(system.set_scores),
            }
        )
    used = {m.key for m in present_per_image_metrics(evaluation, False) + present_set_metrics(evaluation)}
    return _json_safe(
        {
            "tinct_version": __version__,
            "created": evaluation.created,
            "mode": evaluation.mode,
            "data": str(evaluation.data.resolve()),
            "num_images": len(evaluation.images),
            "systems": systems,
            "truth": {
                "colorfulness": summarize(t["colorfulness"] for t in evaluation.truths).as_dict(),
                "mean_chroma": summarize(t["mean_chroma"] for t in evaluation.truths).as_dict(),
            },
            "definitions": {m.key: m.definition for m in METRICS + SET_METRICS if m.key in used},
            "settings": {
                "data_range": 255,
                "ssim": SSIM_SETTINGS,
                "lab": "scikit-image rgb2lab (sRGB, D65, 2 degree observer)",
                "ab_auc_thresholds": "0, 1, ..., 150 (Lab units), trapezoidal area / 150",
                "std": "population standard deviation over images",
                "aggregation": "each metric per image, then mean over images",
                "gray_input": "each truth's CIELAB L (float, no 8-bit rounding)",
                "gray_baseline": "truth L with a = b = 0, converted to sRGB and rounded to uint8",
            },
            "optional_metrics": evaluation.optional,
            "unmatched": evaluation.unmatched,
            "notes": evaluation.notes,
        }
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def default_report_dir(evaluation: Evaluation, root: str | Path = "reports") -> Path:
    """``reports/<system name>-<data folder name>-<timestamp>`` (not created)."""
    names = "+".join(s.name for s in evaluation.systems if s.kind != "baseline")
    if evaluation.mode == "compare":
        names = "compare"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{_slug(names)}-{_slug(evaluation.data.resolve().name)}-{stamp}"


def new_report_dir(path: str | Path | None, evaluation: Evaluation) -> Path:
    """Create the report folder. An explicit path must not exist (:class:`ReportExistsError`);
    a default one gets a suffix."""
    if path is not None:
        path = Path(path)
        refuse_existing_report(path)
        path.mkdir(parents=True)
        return path
    base = default_report_dir(evaluation)
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def write_file(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to a temporary file beside ``path``, flushed to disk, and
    rename it into place: a report file is complete or absent, even on a full disk. An
    OSError names ``path``."""
    from tinct.io import atomic_file

    try:
        with atomic_file(path) as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    return path


@contextlib.contextmanager
def report_folder(path: str | Path | None, evaluation: Evaluation):
    """:func:`new_report_dir`, removed again if any of its files cannot be written; the
    failure becomes one :class:`EvaluationError` naming the file."""
    try:
        folder = new_report_dir(path, evaluation)
    except FileExistsError:
        raise
    except OSError as exc:
        raise EvaluationError(f"{exc.filename or path}: cannot create the report folder ({exc.strerror or exc})") from None
    try:
        yield folder
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise EvaluationError(f"{exc.filename or folder}: cannot write the report ({exc.strerror or exc}); "
                              f"{folder} was removed") from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    return str(value)


def write_metrics_csv(evaluation: Evaluation, path: Path) -> Path:
    """Per-image metrics, one row per (image, system), plus the truth's own colourfulness/chroma."""
    keys = list(evaluation.systems[0].rows[0]) if evaluation.images else []
    with io.StringIO(newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "system", *keys, "truth_colorfulness", "truth_mean_chroma", "seconds"])
        for i, image in enumerate(evaluation.images):
            truth = evaluation.truths[i]
            for system in evaluation.systems:
                seconds = system.seconds[i] if system.seconds else None
                row = system.rows[i]
                writer.writerow(
                    [image, system.name, *(_csv_value(row[k]) for k in keys),
                     _csv_value(truth["colorfulness"]), _csv_value(truth["mean_chroma"]), _csv_value(seconds)]
                )
        return write_file(path, handle.getvalue())


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    # Encoded in memory first: Pillow does not notice a short write to a full disk.
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
    write_file(path, buffer.getvalue())


def _strip(panels: list[tuple[str, np.ndarray]], gap: int = 4) -> np.ndarray:
    """Panels side by side on a white background, top-aligned."""
    height = max(p.shape[0] for _, p in panels)
    width = sum(p.shape[1] for _, p in panels) + gap * (len(panels) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for _, panel in panels:
        canvas[: panel.shape[0], x : x + panel.shape[1]] = panel
        x += panel.shape[1] + gap
    return canvas


def write_comparisons(evaluation: Evaluation, folder: Path) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i, panels in enumerate(evaluation.thumbnails):
        path = folder / f"{i:04d}-{_slug(Path(evaluation.images[i]).with_suffix('').as_posix())}.png"
        _save_png(path, _strip(panels))
        paths.append(path)
    return paths


def write_histograms(evaluation: Evaluation, path: Path) -> Path | None:
    """One PNG with a panel per headline metric: every system's per-image values overlaid.

    Drawn with matplotlib's Agg canvas directly (no pyplot, no global backend change), as a
    single figure because drawing is the slow part on a small CPU.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = present_per_image_metrics(evaluation, headline_only=True)
    if not panels or not evaluation.images:
        return None
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.0 * rows), dpi=80)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.05, right=0.98, bottom=0.07, top=0.95, wspace=0.22, hspace=0.45)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for n, metric in enumerate(panels):
        axes = figure.add_subplot(rows, columns, n + 1)
        series = [(s.name, np.array([r[metric.key] for r in s.rows], dtype=np.float64)) for s in evaluation.systems]
        if metric.key == "colorfulness":
            series.append(("truth", np.array([t["colorfulness"] for t in evaluation.truths], dtype=np.float64)))
        finite = [values[np.isfinite(values)] for _, values in series]
        dropped = sum(v.size for _, v in series) - sum(v.size for v in finite)
        everything = np.concatenate(finite)
        if everything.size:
            low, high = float(everything.min()), float(everything.max())
            if high <= low:
                low, high = low - 0.5, high + 0.5
            bins = np.linspace(low, high, 21)
            for j, ((name, _), values) in enumerate(zip(series, finite)):
                colour = {BASELINE_NAME: "#7f7f7f", "truth": "#000000"}.get(name, colours[j % len(colours)])
                label = f"{name} (mean {np.mean(values):.4g})" if values.size else name
                axes.hist(values, bins=bins, alpha=0.45, label=label, color=colour, edgecolor=colour)
            axes.legend(fontsize=7)
        title = f"{metric.label} ({phrase(metric.better)})" + (f"; {dropped} non-finite not shown" if dropped else "")
        axes.set_title(title, fontsize=9)
        axes.set_ylabel("images", fontsize=8)
        axes.tick_params(labelsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return write_file(path, buffer.getvalue())


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

REPORT_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#555;font-size:.9em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.baseline td{color:#666;background:#fafafa}
.notes li{margin:.2em 0}.warn{color:#a00}
.hist img{max-width:100%;border:1px solid #eee}
.grid{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;max-width:100%}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.78em;color:#444;max-width:620px}
code{background:#f5f5f5;padding:0 3px}
"""


def _html_metric_rows(evaluation: Evaluation, metric_list: list[Metric], set_level: bool) -> str:
    e = html.escape
    stats = {s.name: s.stats() for s in evaluation.systems}
    span = len(evaluation.systems)
    rows = []
    for metric in metric_list:
        for i, system in enumerate(evaluation.systems):
            cls = ' class="baseline"' if system.kind == "baseline" else ""
            head = (f'<td class="l" rowspan="{span}" title="{e(metric.definition)}">{e(metric.label)}</td>'
                    f'<td class="l" rowspan="{span}">{e(metric.better)}</td>') if i == 0 else ""
            if set_level:
                cells = f"<td>{format_value(system.set_scores.get(metric.key), metric.digits)}</td>"
            else:
                st = stats[system.name][metric.key]
                cells = "".join(f"<td>{format_value(v, metric.digits)}</td>" for v in (st.mean, st.std, st.min, st.max))
            rows.append(f'<tr{cls}>{head}<td class="l">{e(system.name)}</td>{cells}</tr>')
    return "".join(rows)


def _html_table(evaluation: Evaluation) -> str:
    per_image_head = ('<tr><th class="l">metric</th><th class="l">better</th><th class="l">system</th>'
                      "<th>mean</th><th>std</th><th>min</th><th>max</th></tr>")
    headline = present_per_image_metrics(evaluation, headline_only=True)
    others = [m for m in present_per_image_metrics(evaluation, headline_only=False) if m not in headline]
    set_level = present_set_metrics(evaluation)
    return (
        f"<table>{per_image_head}{_html_metric_rows(evaluation, headline, False)}</table>"
        '<table><tr><th class="l">set-level metric</th><th class="l">better</th><th class="l">system</th><th>value</th></tr>'
        f"{_html_metric_rows(evaluation, set_level, True)}</table>"
        f"<details><summary>Per-channel metrics and mean chroma</summary><table>{per_image_head}"
        f"{_html_metric_rows(evaluation, others, False)}</table></details>"
    )


def _caption(evaluation: Evaluation, index: int) -> str:
    e = html.escape
    parts = [f"<b>{e(evaluation.images[index])}</b>"]
    for system in evaluation.systems:
        row = system.rows[index]
        parts.append(
            f"{e(system.name)}: PSNR {format_value(row['psnr'], 2)} dB, SSIM {format_value(row['ssim'], 3)}, "
            f"&Delta;E00 {format_value(row['ciede2000'], 2)}, CF {format_value(row['colorfulness'], 1)}"
        )
    parts.append(f"truth CF {format_value(evaluation.truths[index]['colorfulness'], 1)}")
    return "<br>".join(parts)


def write_html(evaluation: Evaluation, folder: Path, histograms: Path | None, comparisons: list[Path]) -> Path:
    e = html.escape
    summary = summary_dict(evaluation)
    notes = "".join(
        f'<li class="{"warn" if "WARNING" in n or "not verified" in n else ""}">{e(n)}</li>' for n in evaluation.notes
    )
    timing = "".join(
        f"<li>{e(s.name)}: {s.seconds_per_image:.4f} s per image (wall time of colorization only), "
        f"{s.parameters:,} parameters</li>"
        for s in evaluation.systems if s.seconds
    )
    definitions = "".join(f"<li><code>{e(k)}</code>: {e(v)}</li>" for k, v in summary["definitions"].items())
    hist_html = (f'<img src="{e(histograms.relative_to(folder).as_posix())}" alt="histograms of the per-image metrics">'
                 if histograms is not None else "<p>(no images)</p>")
    order = [BASELINE_NAME] + [s.name for s in evaluation.systems if s.kind != "baseline"] + ["truth"]
    grid = "".join(
        f'<figure><a href="{e(p.relative_to(folder).as_posix())}"><img src="{e(p.relative_to(folder).as_posix())}" '
        f'alt="{e(evaluation.images[i])}"></a><figcaption>{_caption(evaluation, i)}</figcaption></figure>'
        for i, p in enumerate(comparisons)
    )
    unmatched = ""
    if any(evaluation.unmatched.values()):
        items = "".join(
            f"<li>{e(side)}: {len(names)} file(s): {e(', '.join(names[:50]))}{' ...' if len(names) > 50 else ''}</li>"
            for side, names in evaluation.unmatched.items() if names
        )
        unmatched = f"<h2>Unmatched files (not scored)</h2><ul>{items}</ul>"
    truth = summary["truth"]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tinct evaluation: {e(title_of(evaluation))}</title>
<style>{REPORT_CSS}</style></head><body>
<h1>tinct evaluation</h1>
<p class="meta">{e(title_of(evaluation))}<br>data: <code>{e(summary['data'])}</code><br>
created {e(evaluation.created)} by tinct {e(__version__)}.
Files: <a href="summary.json">summary.json</a>, <a href="metrics.csv">metrics.csv</a> (per image).</p>
<ul class="notes">{notes}{timing}</ul>
<h2>Summary</h2>
<p>Each metric is computed per image and then averaged over the {len(evaluation.images)} images; the
<b>gray baseline</b> (each truth's own lightness with no colour) is scored on the same images.
A colorizer helps only where it beats that row: PSNR and SSIM alone reward gray outputs.
Truths: mean colourfulness {format_value(truth['colorfulness']['mean'], 3)},
mean chroma {format_value(truth['mean_chroma']['mean'], 3)}.</p>
{_html_table(evaluation)}
<h2>Distributions over images</h2>
<div class="hist">{hist_html}</div>
<h2>Comparisons</h2>
<p>Left to right: {e(' | '.join(order))}. {len(comparisons)} of {len(evaluation.images)} images shown (thumbnails).</p>
<div class="grid">{grid}</div>
{unmatched}
<h2>Definitions</h2>
<ul>{definitions}</ul>
<p class="meta">SSIM settings: <code>{e(json.dumps(SSIM_SETTINGS))}</code>. Lab values from scikit-image <code>rgb2lab</code>
(D65, 2&deg;). Standard deviations are population standard deviations over images.</p>
</body></html>
"""
    return write_file(folder / "index.html", page)


def write_report(evaluation: Evaluation, out: str | Path | None = None) -> Path:
    """Write the whole report folder (never overwriting one); returns its path.

    Every file is written atomically; if one cannot be written, the folder is removed and
    :class:`EvaluationError` names the file."""
    with report_folder(out, evaluation) as folder:
        write_metrics_csv(evaluation, folder / "metrics.csv")
        write_file(folder / "summary.json", json.dumps(summary_dict(evaluation), indent=2, allow_nan=False) + "\n")
        comparisons = write_comparisons(evaluation, folder / "comparisons")
        histograms = write_histograms(evaluation, folder / "histograms.png")
        write_html(evaluation, folder, histograms, comparisons)
    return folder
