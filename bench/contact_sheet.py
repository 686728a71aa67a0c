"""Contact sheet: every photo of a folder as gray | model 1 | model 2 | ... | truth, in one JPEG.

    .venv/bin/python bench/contact_sheet.py ../shared/data/cbsd68 --models tinct-v1 tinct-v2 \
        --out docs/images/cbsd68-contact-sheet.jpg

Each truth's own CIELAB L is the input (as ``tinct evaluate`` does it); photos are laid out
``--per-row`` to a row, each as a strip of thumbnails ``--thumb`` pixels high with the
column names written once at the top. Prints the output's path and size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _strip(tiles: list[np.ndarray], height: int, gap: int) -> Image.Image:
    """The tiles side by side, each fitted (aspect kept, centred) into a height x 1.5 height box."""
    box_w = round(1.5 * height)
    strip = Image.new("RGB", (len(tiles) * box_w + gap * (len(tiles) - 1), height), "white")
    for i, tile in enumerate(tiles):
        image = Image.fromarray(tile)
        image.thumbnail((box_w, height), Image.LANCZOS)
        strip.paste(image, (i * (box_w + gap) + (box_w - image.width) // 2, (height - image.height) // 2))
    return strip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--models", nargs="+", required=True, help="shipped names or checkpoint paths")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--thumb", type=int, default=72, help="thumbnail height in pixels")
    parser.add_argument("--per-row", type=int, default=2, help="photos per row")
    parser.add_argument("--quality", type=int, default=82)
    args = parser.parse_args()

    from tqdm import tqdm

    from tinct.color import cielab_lightness, lightness_to_gray, to_uint8
    from tinct.infer import Colorizer
    from tinct.io import Photo, list_images, read_rgb

    paths = list_images(args.folder)
    if not paths:
        print(f"{args.folder}: no images", file=sys.stderr)
        return 2
    colorizers = [Colorizer(model=m) for m in args.models]
    strips = []
    for path in tqdm(paths, desc="photos"):
        truth = read_rgb(path)
        l = cielab_lightness(truth)
        gray = to_uint8(np.repeat(lightness_to_gray(l)[..., None], 3, axis=-1))
        results = [c.colorize_photo(Photo(lightness=l)) for c in colorizers]
        strips.append(_strip([gray, *results, truth], args.thumb, 2))
    names = ["gray", *[Path(m).stem for m in args.models], "truth"]
    cell_w, gap = max(s.width for s in strips), 10
    rows = (len(strips) + args.per_row - 1) // args.per_row
    header = 18
    sheet = Image.new("RGB", (args.per_row * cell_w + (args.per_row - 1) * gap, header + rows * (args.thumb + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    col_w = round(1.5 * args.thumb) + 2
    for block in range(args.per_row):
        for i, name in enumerate(names):
            draw.text((block * (cell_w + gap) + i * col_w + 4, 3), name, fill="black")
    for i, strip in enumerate(strips):
        row, block = divmod(i, args.per_row)
        sheet.paste(strip, (block * (cell_w + gap), header + row * (args.thumb + 4)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=args.quality, optimize=True)
    print(f"{args.out}: {sheet.width} x {sheet.height}, {args.out.stat().st_size / 1e3:.0f} kB, {len(paths)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
