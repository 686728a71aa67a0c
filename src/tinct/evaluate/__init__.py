"""Honest evaluation: held-out images, the gray baseline beside every model, colour metrics.

>>> from tinct.evaluate import evaluate_model, write_report, format_table    # doctest: +SKIP
>>> evaluation = evaluate_model("tinct-v0", "../shared/data/cbsd68")         # doctest: +SKIP
>>> print(format_table(evaluation)); write_report(evaluation)               # doctest: +SKIP

* :func:`evaluate_model` / :func:`compare_models`: each truth becomes a gray input with
  exactly its CIELAB L, is colorized, and is scored; refuses data the checkpoint records
  as training data (``extra.data_config.sources``) unless ``allow_train_data``.
* :func:`evaluate_predictions`: scores another tool's outputs, matched to truths by
  relative path with the extension ignored.
* :func:`write_report` (``metrics.csv``, ``summary.json``, comparisons, histograms,
  ``index.html``) and :func:`write_leaderboard` (``leaderboard.md`` / ``.html``).
"""

from tinct.evaluate.leaderboard import format_leaderboard_markdown, write_leaderboard
from tinct.evaluate.report import format_table, summary_dict, write_report
from tinct.evaluate.runner import (
    BASELINE_NAME,
    Evaluation,
    EvaluationError,
    SystemResult,
    check_held_out,
    compare_models,
    evaluate_model,
    evaluate_predictions,
    match_predictions,
    training_folders,
)
from tinct.evaluate.scoring import METRICS, SET_METRICS, gray_baseline, score_pair
from tinct.models.base import count_parameters

__all__ = [
    "BASELINE_NAME",
    "METRICS",
    "SET_METRICS",
    "Evaluation",
    "EvaluationError",
    "SystemResult",
    "check_held_out",
    "compare_models",
    "evaluate_model",
    "evaluate_predictions",
    "format_leaderboard_markdown",
    "format_table",
    "gray_baseline",
    "count_parameters",
    "match_predictions",
    "score_pair",
    "summary_dict",
    "training_folders",
    "write_leaderboard",
    "write_report",
]
