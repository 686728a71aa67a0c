"""The ``tinct compare`` leaderboard: one row per model plus the gray baseline, means over images.

Columns: parameters, seconds per image (wall time of colorization only, every model timed in
the same process), then the mean of each headline metric and the set-level metrics.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from tinct import __version__
from tinct.evaluate.report import (
    REPORT_CSS,
    present_per_image_metrics,
    present_set_metrics,
    title_of,
    format_value,
    report_folder,
    summary_dict,
    write_comparisons,
    write_file,
    write_metrics_csv,
)
from tinct.evaluate.runner import Evaluation
from tinct.metrics.direction import short_label

__all__ = ["leaderboard_columns", "leaderboard_rows", "format_leaderboard_markdown", "write_leaderboard"]

def leaderboard_columns(evaluation: Evaluation) -> list[str]:
    columns = ["system", "parameters", "s/image"]
    for metric in present_per_image_metrics(evaluation, headline_only=True):
        columns.append(f"{metric.label} ({short_label(metric.better)})")
    for metric in present_set_metrics(evaluation):
        columns.append(f"{metric.label} ({short_label(metric.better)})")
    return columns


def leaderboard_rows(evaluation: Evaluation) -> list[list[str]]:
    """Formatted cells, one row per system (baseline last), in :func:`leaderboard_columns` order."""
    per_image = present_per_image_metrics(evaluation, headline_only=True)
    set_level = present_set_metrics(evaluation)
    rows = []
    for system in evaluation.systems:
        stats = system.stats()
        seconds = system.seconds_per_image
        cells = [
            system.name,
            f"{system.parameters:,}" if system.parameters is not None else "-",
            format_value(seconds, 4) if seconds is not None else "-",
        ]
        cells += [format_value(stats[m.key].mean, m.digits) for m in per_image]
        cells += [format_value(system.set_scores.get(m.key), m.digits) for m in set_level]
        rows.append(cells)
    return rows


def format_leaderboard_markdown(evaluation: Evaluation) -> str:
    columns = leaderboard_columns(evaluation)
    rows = leaderboard_rows(evaluation)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    separator = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    body = [line(columns), separator, *(line(r) for r in rows)]
    footer = [
        "",
        f"Means over {len(evaluation.images)} images of `{evaluation.data}`; each metric per image, then averaged.",
        "The gray baseline is each truth's own lightness with no colour: PSNR/SSIM alone reward it.",
        "s/image: wall time of colorization only, in one process. Definitions: docs/evaluation.md.",
        *(f"- {note}" for note in evaluation.notes),
    ]
    return "\n".join(body + footer)


def write_leaderboard(evaluation: Evaluation, out: str | Path | None = None) -> Path:
    """Write ``leaderboard.md``, ``leaderboard.html``, ``summary.json``, ``metrics.csv`` and comparisons
    (atomically; a folder that cannot be completed is removed, see :func:`report_folder`)."""
    with report_folder(out, evaluation) as folder:
        markdown = format_leaderboard_markdown(evaluation)
        write_file(folder / "leaderboard.md", f"# tinct compare: {title_of(evaluation)}\n\n{markdown}\n")
        write_file(folder / "summary.json", json.dumps(summary_dict(evaluation), indent=2, allow_nan=False) + "\n")
        write_metrics_csv(evaluation, folder / "metrics.csv")
        comparisons = write_comparisons(evaluation, folder / "comparisons")
        write_file(folder / "leaderboard.html", _leaderboard_page(evaluation, folder, comparisons))
    return folder


def _leaderboard_page(evaluation: Evaluation, folder: Path, comparisons: list[Path]) -> str:
    e = html.escape
    columns = leaderboard_columns(evaluation)
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{e(c)}</th>' for i, c in enumerate(columns))
    body = "".join(
        f'<tr class="{"baseline" if system.kind == "baseline" else ""}">'
        + "".join(f'<td class="{"l" if i == 0 else ""}">{e(c)}</td>' for i, c in enumerate(row))
        + "</tr>"
        for system, row in zip(evaluation.systems, leaderboard_rows(evaluation))
    )
    order = ["gray baseline"] + [s.name for s in evaluation.systems if s.kind != "baseline"] + ["truth"]
    grid = "".join(
        f'<figure><img src="{e(p.relative_to(folder).as_posix())}" alt="{e(evaluation.images[i])}">'
        f"<figcaption>{e(evaluation.images[i])}</figcaption></figure>"
        for i, p in enumerate(comparisons)
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in evaluation.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tinct compare: {e(title_of(evaluation))}</title>
<style>{REPORT_CSS}</style></head><body>
<h1>tinct compare</h1>
<p class="meta">{e(title_of(evaluation))}<br>data: <code>{e(str(evaluation.data.resolve()))}</code><br>
created {e(evaluation.created)} by tinct {e(__version__)}. Files: <a href="leaderboard.md">leaderboard.md</a>,
<a href="summary.json">summary.json</a>, <a href="metrics.csv">metrics.csv</a>.</p>
<table><tr>{head}</tr>{body}</table>
<p>Means over images (each metric per image, then averaged); set-level metrics are one value per set.
The gray baseline is each truth's own lightness with no colour. s/image is the wall time of colorization only,
every model timed in this one process.</p>
<ul class="notes">{notes}</ul>
<h2>Comparisons</h2>
<p>Left to right: {e(' | '.join(order))}.</p>
<div class="grid">{grid}</div>
</body></html>
"""
