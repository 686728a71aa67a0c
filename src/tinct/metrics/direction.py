"""Which way each metric is better, and the words reports use for it.

A metric is better ``HIGHER`` (PSNR, SSIM, ab AuC), ``LOWER`` (CIEDE2000, MSE, CDC),
``TOWARD_ONE`` (a ratio whose ideal is 1: the chroma ratio) or ``TOWARD_TRUTH`` (a property of
the output that should match the truth's, such as colourfulness, where more is not better).
Tables print the short label, plot titles the phrase.

>>> short_label(TOWARD_TRUTH), short_label(TOWARD_ONE), phrase(LOWER)
('~truth', '->1', 'lower is better')
"""

from __future__ import annotations

__all__ = ["HIGHER", "LOWER", "TOWARD_ONE", "TOWARD_TRUTH", "SHORT_LABELS", "short_label", "phrase"]

HIGHER = "higher"
LOWER = "lower"
TOWARD_ONE = "closer to 1"
TOWARD_TRUTH = "closer to truth"

SHORT_LABELS = {HIGHER: "higher", LOWER: "lower", TOWARD_ONE: "->1", TOWARD_TRUTH: "~truth"}


def short_label(direction: str) -> str:
    """The table label of a direction (at most 7 characters): ``"higher"``, ``"->1"``, ..."""
    try:
        return SHORT_LABELS[direction]
    except KeyError:
        raise ValueError(f"unknown metric direction {direction!r}; known: {', '.join(SHORT_LABELS)}") from None


def phrase(direction: str) -> str:
    """The direction as words: ``"higher is better"``, ``"lower is better"``, ``"closer to 1"``, ..."""
    short_label(direction)  # refuse an unknown direction
    return f"{direction} is better" if direction in (HIGHER, LOWER) else direction
