"""What a user knows about a photo's colours: point hints and a reference photo.

A :class:`Hint` is a pixel position in the photo's own full-resolution coordinates (``x`` the
column, ``y`` the row, from the top-left corner) and an sRGB colour. Only the colour's chroma
counts: the photo keeps its own lightness, so a hint says "this is blue", not "this is dark".

Hints files are JSON (``tinct colorize old.jpg --hints old.hints.json``)::

    {
      "width": 1224, "height": 816,
      "hints": [
        {"x": 410, "y": 128, "color": "#3a6fc4"},
        {"x": 97.5, "y": 700, "color": [200, 40, 35]}
      ]
    }

``width`` and ``height`` (optional) are the size of the photo the points were placed on; a
file written for another photo is refused. ``color`` is ``"#rrggbb"`` or ``[r, g, b]`` in
0-255. A bare list of hints is accepted too.

A reference photo (any colour photo) guides the whole result through its ab histogram over
the model's colour bins (:func:`reference_histogram`). What else it sets is ``reference_match``
(:data:`REFERENCE_MATCHES`): by default (``"colors"``) the result's a and b are then moved to the
reference's mean and spread (:func:`ab_transfer`, colour transfer in the ab plane) and made as
colourful as the reference (:func:`colorfulness_gain`: one chroma gain per photo);
``"colorfulness"`` applies the gain only, ``"histogram"`` neither.

After the network, a hint model with ``hint_spread`` > 0 carries each point's colour error to the
nearby pixels of similar lightness (:func:`spread_hints`), so the result follows the points.

Shapes and units: :func:`hint_points` gives the ``(3, S, S)`` array a hint model takes,
a/110 and b/110 (:data:`tinct.color.LAB`) where the mask (third channel) is 1.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tinct.color import LAB, lab_to_rgb_uint8, rgb_to_lab
from tinct.errors import TinctError
from tinct.metrics.chromatic import colorfulness

__all__ = [
    "Hint",
    "HintError",
    "parse_hints",
    "read_hints",
    "hints_to_json",
    "check_hints_fit",
    "hint_points",
    "working_positions",
    "spread_hints",
    "hints_from_truth",
    "reference_histogram",
    "reference_sample",
    "colorfulness_gain",
    "ab_transfer",
    "match_reference",
    "check_reference_match",
    "GAIN_RANGE",
    "REFERENCE_MATCHES",
    "REFERENCE_MATCH",
    "HINT_MODEL",
    "as_hints",
    "reference_rgb",
    "colorize_with_hints",
]

HINT_MODEL = "tinct-v2-hints"  # the shipped hint model: what "default" means with hints
GAIN_RANGE = (0.25, 4.0)  # the chroma gains that match a reference (colourfulness, ab spread) stay in here
# What a reference photo sets besides the network's histogram input: nothing more, its
# colourfulness, or its a/b mean and spread and then its colourfulness (the default, chosen on
# held-out photos: docs/tinct-v2-hints-release.md, tenth release, decision 2).
REFERENCE_MATCHES = ("histogram", "colorfulness", "colors")
REFERENCE_MATCH = "colors"


class HintError(TinctError, ValueError):
    """A hints file or hint that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Hint:
    """A colour at a point: ``x`` (column) and ``y`` (row) in full-resolution pixels, ``rgb``
    an sRGB triple of ints in 0-255."""

    x: float
    y: float
    rgb: tuple[int, int, int]

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)

    def to_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "color": self.hex}


def _colour(value, where: str) -> tuple[int, int, int]:
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 7 and text[0] == "#":
            try:
                return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
            except ValueError:
                pass
        raise HintError(f"{where}: color {value!r} is not '#rrggbb' or [r, g, b]")
    if isinstance(value, (list, tuple)) and len(value) == 3:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
            return tuple(int(round(v)) for v in value)  # type: ignore[return-value]
        raise HintError(f"{where}: color {list(value)} must hold three numbers in 0-255")
    raise HintError(f"{where}: color {value!r} is not '#rrggbb' or [r, g, b]")


def _coordinate(entry: dict, key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise HintError(f"{where}: {key} must be a number of pixels, got {value!r}")
    return float(value)


def parse_hints(data, source: str = "hints") -> tuple[list[Hint], tuple[int, int] | None]:
    """Hints from parsed JSON (see the module docstring) -> ``(hints, (width, height) or None)``.

    Raises :class:`HintError` naming ``source`` and the entry (``hint 3``, counted from 1).
    """
    size = None
    if isinstance(data, dict):
        if "hints" not in data:
            raise HintError(f"{source}: expected a 'hints' list")
        if ("width" in data) != ("height" in data):
            raise HintError(f"{source}: give both 'width' and 'height', or neither")
        if "width" in data:
            w, h = data["width"], data["height"]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
                raise HintError(f"{source}: width and height must be positive integers, got {w!r} and {h!r}")
            size = (w, h)
        data = data["hints"]
    if not isinstance(data, list):
        raise HintError(f"{source}: expected a list of hints, got {type(data).__name__}")
    hints = []
    for index, entry in enumerate(data, 1):
        where = f"{source}: hint {index}"
        if not isinstance(entry, dict):
            raise HintError(f"{where}: expected {{\"x\": .., \"y\": .., \"color\": ..}}, got {entry!r}")
        unknown = set(entry) - {"x", "y", "color"}
        if unknown:
            raise HintError(f"{where}: unknown key {sorted(unknown)[0]!r} (a hint has x, y and color)")
        if "color" not in entry:
            raise HintError(f"{where}: no color")
        x, y = _coordinate(entry, "x", where), _coordinate(entry, "y", where)
        hints.append(Hint(x, y, _colour(entry["color"], where)))
    return hints, size


def read_hints(path: str | os.PathLike) -> tuple[list[Hint], tuple[int, int] | None]:
    """Read a hints JSON file -> ``(hints, (width, height) or None)``; one-line errors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HintError(f"{path}: no such hints file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HintError(f"{path}: cannot read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HintError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return parse_hints(data, str(path))


def as_hints(value) -> tuple[list[Hint], tuple[int, int] | None, str]:
    """Hints from what a Python user passes -> ``(hints, (width, height) or None, source name)``:
    None, a hints JSON file path, a parsed JSON object, or a list of :class:`Hint`,
    ``{"x", "y", "color"}`` dicts or ``(x, y, color)`` tuples."""
    if value is None:
        return [], None, "hints"
    if isinstance(value, (str, os.PathLike)):
        hints, size = read_hints(value)
        return hints, size, str(value)
    if isinstance(value, dict):
        hints, size = parse_hints(value)
        return hints, size, "hints"
    entries = []
    for item in value:
        if isinstance(item, Hint):
            entries.append(item.to_dict())
        elif isinstance(item, (tuple, list)) and len(item) == 3:
            entries.append({"x": item[0], "y": item[1], "color": item[2]})
        else:
            entries.append(item)
    hints, _ = parse_hints(entries)
    return hints, None, "hints"


def reference_rgb(reference) -> np.ndarray | None:
    """A reference photo as uint8 RGB ``(H, W, 3)``: from a path, a PIL image or an array."""
    if reference is None:
        return None
    if isinstance(reference, (str, os.PathLike)):
        from tinct.io import read_rgb

        return read_rgb(reference)
    array = np.asarray(reference.convert("RGB") if hasattr(reference, "convert") else reference)
    if array.ndim != 3 or array.shape[2] < 3 or array.dtype != np.uint8:
        raise HintError(f"a reference photo must be uint8 RGB (H, W, 3), got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array[..., :3])


def hints_to_json(hints: Sequence[Hint], size: tuple[int, int] | None = None) -> str:
    """The JSON text :func:`read_hints` reads back (``size`` = the photo's (width, height))."""
    data: dict = {}
    if size is not None:
        data["width"], data["height"] = int(size[0]), int(size[1])
    data["hints"] = [h.to_dict() for h in hints]
    return json.dumps(data, indent=1)


def check_hints_fit(hints: Sequence[Hint], width: int, height: int, size: tuple[int, int] | None = None,
                    source: str = "hints") -> None:
    """Refuse hints written for another photo or lying outside this ``width x height`` one."""
    if size is not None and tuple(size) != (width, height):
        raise HintError(f"{source}: written for a {size[0]}x{size[1]} photo, this one is {width}x{height}")
    for index, hint in enumerate(hints, 1):
        if not (0 <= hint.x < width and 0 <= hint.y < height):
            raise HintError(
                f"{source}: hint {index}: ({hint.x:g}, {hint.y:g}) is outside the {width}x{height} photo"
            )


def _hint_ab(hints: Sequence[Hint]) -> np.ndarray:
    """``(N, 2)`` CIELAB a, b of the hints' colours."""
    rgb = np.array([h.rgb for h in hints], dtype=np.uint8).reshape(-1, 1, 3)
    return rgb_to_lab(rgb)[:, 0, 1:].astype(np.float32)


def working_positions(hints: Sequence[Hint], photo_size: tuple[int, int], content: tuple[int, int]) -> np.ndarray:
    """Where full-resolution hints fall at working resolution: int ``(N, 2)`` rows and columns
    inside the ``content`` box ``(height, width)`` of a photo of ``photo_size`` ``(height, width)``."""
    (height, width), (content_h, content_w) = photo_size, content
    rows = [min(int(h.y * content_h / height), content_h - 1) for h in hints]
    cols = [min(int(h.x * content_w / width), content_w - 1) for h in hints]
    return np.array([rows, cols], dtype=np.int64).T.reshape(-1, 2)


def hint_points(
    hints: Sequence[Hint], photo_size: tuple[int, int], content: tuple[int, int], size: int, patch: int
) -> np.ndarray:
    """Rasterise hints for a hint model working on a ``size x size`` square.

    Args:
        hints: points in the photo's full-resolution pixels.
        photo_size: the photo's ``(height, width)``.
        content: ``(height, width)`` of the photo inside the square (top-left aligned, as
            :func:`tinct.infer.resize_and_pad` places it).
        size: the square's side.
        patch: each hint fills ``patch x patch`` working pixels around its point (a hint
            model's ``config.hint_patch``).
    Returns:
        float32 ``(3, size, size)``: a/110, b/110 where the mask (channel 2) is 1, else 0.
        Later hints overwrite earlier ones where they overlap.
    """
    out = np.zeros((3, size, size), dtype=np.float32)
    if not hints:
        return out
    ab = LAB.normalize_ab(_hint_ab(hints))
    for (row, col), (a, b) in zip(working_positions(hints, photo_size, content), ab):
        top, left = max(row - patch // 2, 0), max(col - patch // 2, 0)
        bottom, right = row + patch - patch // 2, col + patch - patch // 2
        out[:, top:bottom, left:right] = np.array([a, b, 1], dtype=np.float32)[:, None, None]
    return out


def spread_hints(lightness: np.ndarray, ab: np.ndarray, positions: np.ndarray, hint_ab: np.ndarray,
                 spread: float, lightness_sigma: float, floor: float, reach: float) -> np.ndarray:
    """Carry each point's colour error to the pixels around it that look like it.

    The network follows a point only roughly; here the error at each point (hint ab minus the
    predicted ab there) is spread to pixel ``p`` with weight
    ``w_i(p) = exp(-d^2 / 2 s^2) * exp(-(L(p) - L_i)^2 / 2 lightness_sigma^2)``, ``d`` the
    distance to point ``i`` and ``s = min(spread x sqrt(h w / N), reach x max(h, w))``: a share of
    the mean spacing of the ``N`` points (a few points reach further, many stay local), but no more
    than ``reach`` of the long side (a point means the region it is on), and added to the prediction as
    ``sum_i w_i e_i / (sum_i w_i + floor)``: nearly all of the error at a point, a weighted mean
    of the nearby errors between points, nothing far from every point or across a change of
    lightness. No points: ``ab`` unchanged.

    Args:
        lightness: CIELAB L ``(h, w)`` in 0-100 at working resolution.
        ab: the prediction, a and b ``(2, h, w)`` in Lab units, same ``(h, w)``.
        positions: int ``(N, 2)`` rows and columns of the points (:func:`working_positions`).
        hint_ab: ``(N, 2)`` the points' a, b in Lab units.
        spread: ``s`` as a share of the points' mean spacing, > 0; ``lightness_sigma`` in L units, > 0;
            ``floor`` > 0: where the summed weight is well below it, the error fades out;
            ``reach`` > 0: the largest ``s``, as a share of ``max(h, w)``.
    Returns:
        float32 ``(2, h, w)``.
    """
    lightness, ab = np.asarray(lightness, np.float32), np.asarray(ab, np.float32)
    if ab.shape != (2, *lightness.shape):
        raise ValueError(f"expected ab of shape (2, {lightness.shape[0]}, {lightness.shape[1]}), got {ab.shape}")
    if not len(positions):
        return ab
    rows, cols = np.asarray(positions).T
    error = np.asarray(hint_ab, np.float32) - ab[:, rows, cols].T  # (N, 2)
    height, width = lightness.shape
    scale = 2 * min(spread**2 * height * width / len(rows), (reach * max(height, width)) ** 2)
    total, weight_sum = np.zeros((2, height, width), np.float32), np.zeros((height, width), np.float32)
    for start in range(0, len(rows), 64):  # (64, h, w) float32 at a time
        r, c, e = rows[start : start + 64], cols[start : start + 64], error[start : start + 64]
        near_y = np.exp(-((np.arange(height)[None] - r[:, None]) ** 2) / scale).astype(np.float32)
        near_x = np.exp(-((np.arange(width)[None] - c[:, None]) ** 2) / scale).astype(np.float32)
        alike = np.exp(-((lightness[None] - lightness[r, c][:, None, None]) ** 2) / (2 * lightness_sigma**2))
        weight = near_y[:, :, None] * near_x[:, None, :] * alike  # (n, h, w)
        weight_sum += weight.sum(axis=0)
        total += np.einsum("nhw,nk->khw", weight, e)
    return ab + total / (weight_sum + floor)


def hints_from_truth(rgb: np.ndarray, count: int, seed: int = 0, window: int = 5) -> list[Hint]:
    """``count`` hints a user could give for the colour photo ``rgb`` (uint8 ``(H, W, 3)``):
    uniform random positions (fixed ``seed``), each with the mean colour of the truth over a
    ``window x window`` square around it. Used by ``tinct evaluate --hints N``."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if count < 0:
        raise ValueError(f"the number of hints must be at least 0, got {count}")
    height, width = rgb.shape[:2]
    rng = np.random.default_rng(seed)
    ys, xs = rng.integers(0, height, count), rng.integers(0, width, count)
    hints = []
    for y, x in zip(ys.tolist(), xs.tolist()):
        square = rgb[max(y - window // 2, 0) : y + window // 2 + 1, max(x - window // 2, 0) : x + window // 2 + 1]
        colour = tuple(int(round(v)) for v in square.reshape(-1, 3).mean(axis=0))
        hints.append(Hint(float(x), float(y), colour))  # type: ignore[arg-type]
    return hints


def reference_sample(rgb: np.ndarray, side: int = 256) -> np.ndarray:
    """Every k-th row and column of an RGB reference ``(H, W, 3)``, about ``side`` pixels on its long
    side: a subsample (no blur), so its colour statistics are the photo's."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB reference photo of shape (H, W, 3), got {rgb.shape}")
    step = max(1, int(np.ceil(max(rgb.shape[:2]) / side)))
    return rgb[::step, ::step]


def colorfulness_gain(lightness: np.ndarray, ab: np.ndarray, target: float, steps: int = 24) -> float:
    """The chroma gain ``g`` that makes ``Lab(lightness, g * ab)`` as colourful as ``target``.

    Colourfulness is Hasler & Suesstrunk's (:func:`tinct.metrics.colorfulness`) of the uint8 sRGB
    image, with chroma fitted to the gamut as a colorized photo's is; it grows with ``g``, so
    ``g`` is found by bisection on ``log g`` within :data:`GAIN_RANGE` (an end of the range when
    the target lies beyond it, e.g. 0.25 for a gray reference).

    Args:
        lightness: CIELAB L ``(h, w)`` in 0-100.
        ab: the predicted a, b ``(2, h, w)`` in Lab units, same ``(h, w)``.
        target: the colourfulness to reach (the reference photo's), >= 0.
    Returns:
        ``g`` in :data:`GAIN_RANGE`.
    """
    lightness, ab = np.asarray(lightness, np.float32), np.asarray(ab, np.float32)
    if ab.shape != (2, *lightness.shape):
        raise ValueError(f"expected ab of shape (2, {lightness.shape[0]}, {lightness.shape[1]}), got {ab.shape}")

    def cf(gain: float) -> float:
        return colorfulness(lab_to_rgb_uint8(lightness, ab[0] * gain, ab[1] * gain))

    low, high = np.log(GAIN_RANGE[0]), np.log(GAIN_RANGE[1])
    if cf(float(np.exp(low))) >= target:
        return GAIN_RANGE[0]
    if cf(float(np.exp(high))) <= target:
        return GAIN_RANGE[1]
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if cf(float(np.exp(middle))) < target else (low, middle)
    return float(np.exp((low + high) / 2))


def ab_transfer(ab: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(scale, shift)`` that give the predicted a and b the reference's mean and
    standard deviation: ``scale * ab + shift`` (colour transfer restricted to the ab plane, after
    Reinhard et al. 2001; lightness is the photo's own).

    Args:
        ab: the predicted a, b ``(2, h, w)`` in Lab units.
        reference: uint8 RGB ``(H, W, 3)``, subsampled as :func:`reference_sample` does.
    Returns:
        ``scale`` and ``shift``, float32 ``(2,)`` each; ``scale`` within :data:`GAIN_RANGE` (a
        flat prediction is not blown up without bound).
    """
    ab = np.asarray(ab, np.float64)
    if ab.ndim != 3 or ab.shape[0] != 2:
        raise ValueError(f"expected ab of shape (2, h, w), got {ab.shape}")
    target = rgb_to_lab(reference_sample(reference))[..., 1:].reshape(-1, 2).astype(np.float64)
    predicted = ab.reshape(2, -1)
    scale = np.clip(target.std(0) / np.maximum(predicted.std(1), 1e-3), *GAIN_RANGE)
    shift = target.mean(0) - scale * predicted.mean(1)
    return scale.astype(np.float32), shift.astype(np.float32)


def check_reference_match(match: str) -> None:
    """A :class:`HintError` naming the choices unless ``match`` is one of :data:`REFERENCE_MATCHES`."""
    if match not in REFERENCE_MATCHES:
        raise HintError(f"reference_match must be one of {', '.join(REFERENCE_MATCHES)}; got {match!r}")


def match_reference(lightness: np.ndarray, ab: np.ndarray, ab_work: np.ndarray, reference: np.ndarray,
                    match: str = REFERENCE_MATCH) -> np.ndarray:
    """``ab`` adjusted to a reference photo as ``match`` (one of :data:`REFERENCE_MATCHES`) asks.

    Args:
        lightness: CIELAB L ``(h, w)`` at working resolution, 0-100.
        ab: the prediction ``(2, h', w')`` to adjust, Lab units (any resolution).
        ab_work: the same prediction at ``lightness``'s resolution, where the statistics are measured.
        reference: uint8 RGB ``(H, W, 3)``.
    Returns:
        float32 ``(2, h', w')``.
    """
    check_reference_match(match)
    ab, ab_work = np.asarray(ab, np.float32), np.asarray(ab_work, np.float32)
    if match == "histogram":
        return ab
    if match == "colors":
        scale, shift = ab_transfer(ab_work, reference)
        ab = ab * scale[:, None, None] + shift[:, None, None]
        ab_work = ab_work * scale[:, None, None] + shift[:, None, None]
    return ab * colorfulness_gain(lightness, ab_work, colorfulness(reference_sample(reference)))


def reference_histogram(rgb: np.ndarray, centers, side: int = 256) -> np.ndarray:
    """The ab histogram of a colour reference photo, as a hint model takes it.

    Args:
        rgb: uint8 RGB ``(H, W, 3)``; it is reduced to about ``side`` pixels on its long side.
        centers: the model's bin centres ``(Q, 2)`` (``model.bin_centers``).
    Returns:
        float32 ``(Q,)`` summing to 1.
    """
    import torch

    from tinct.models.ab_bins import histogram

    ab = rgb_to_lab(reference_sample(rgb, side))[..., 1:].astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(ab.transpose(2, 0, 1)))[None]
    return histogram(tensor, torch.as_tensor(centers)).numpy()[0].astype(np.float32)


def require_hint_model(colorizer):
    """The colorizer's model if it takes hints (torch engine), else a :class:`HintError`."""
    model = colorizer.model
    if colorizer.engine != "torch" or not model.takes_hints:  # an ONNX export takes no hints
        name = getattr(colorizer, "name", "this model")
        raise HintError(f"{name} takes no hints or reference photo; use a hint model such as tinct-v2-hints")
    return model


def colorize_with_hints(colorizer, photo, hints: Sequence[Hint] = (), reference: np.ndarray | None = None,
                        size: tuple[int, int] | None = None, source: str = "hints",
                        reference_match: str = REFERENCE_MATCH) -> np.ndarray:
    """Colorize one :class:`tinct.io.Photo` with a hint model, guided by point ``hints`` (in the
    photo's full-resolution pixels) and/or a ``reference`` colour photo (uint8 RGB ``(H, W, 3)``).

    ``colorizer`` is a :class:`tinct.infer.Colorizer` on the torch engine holding a model trained
    with hints; ``size`` is the (width, height) a hints file was written for. With a reference,
    ``reference_match`` says what else it sets (:func:`match_reference`). Returns uint8 RGB
    ``(H, W, 3)`` at full resolution.
    """
    import torch

    from tinct.infer import upsample_bilinear

    model = require_hint_model(colorizer)
    check_reference_match(reference_match)
    height, width = photo.lightness.shape
    check_hints_fit(hints, width, height, size, source)
    squares, boxes = colorizer.working_squares([photo])
    box, side = boxes[0], squares.shape[-1]
    points = hint_points(hints, (height, width), (box.height, box.width), side, model.config.hint_patch)
    points = torch.from_numpy(points)[None]
    histogram = None
    if reference is not None:
        histogram = torch.from_numpy(reference_histogram(reference, model.bin_centers))[None]
    with torch.inference_mode():
        ab = model.predict_ab(torch.from_numpy(squares), points if hints else None, histogram)
    ab = colorizer.crop_to_content(ab.float().numpy(), boxes)[0]
    lightness = squares[0, 0, : box.height, : box.width]  # the network's ab is 4x coarser than this
    if reference is not None:  # measured at working resolution
        ab = match_reference(lightness, ab, upsample_bilinear(ab, *lightness.shape), reference, reference_match)
    spread = model.config.hint_spread
    if hints and spread > 0:  # after the reference, so a point keeps its colour whatever the reference says
        positions = working_positions(hints, (height, width), (box.height, box.width))
        ab = spread_hints(lightness, upsample_bilinear(ab, *lightness.shape), positions, _hint_ab(hints), spread,
                          model.config.hint_spread_lightness, model.config.hint_spread_floor,
                          model.config.hint_spread_max)
    return colorizer.compose(photo, ab)

