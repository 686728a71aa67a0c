"""What point hints do to a photo: gray | no points | N points without spreading | N points |
truth, a row per photo, the points drawn as small rings on the gray column.

    .venv/bin/python bench/hint_examples.py ../shared/data/cbsd68 --photos 3 21 40 --points 10 \
        --out docs/images/hints-examples.jpg

The points are sampled from each truth as ``tinct evaluate --hints`` samples them (seed 0 +
the photo's index in the folder); "without spreading" is the same hint model with
``hint_spread`` set to 0. Prints the output's path and each row's PSNR.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _tile(rgb: np.ndarray, height: int) -> Image.Image:
    image = Image.fromarray(rgb)
    return image.resize((round(image.width * height / image.height), height), Image.LANCZOS)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="colour truth photos")
    p.add_argument("--photos", type=int, nargs="+", default=[0, 1, 2], help="indices in the folder's sorted list")
    p.add_argument("--points", type=int, default=10)
    p.add_argument("--model", default="tinct-v2-hints")
    p.add_argument("--height", type=int, default=200, help="tile height in pixels")
    p.add_argument("--out", default="hints-examples.jpg")
    args = p.parse_args(argv)

    from tinct import metrics
    from tinct.color import cielab_lightness
    from tinct.evaluate.scoring import gray_baseline
    from tinct.hints import colorize_with_hints, hints_from_truth
    from tinct.infer import Colorizer
    from tinct.io import Photo, list_images, read_rgb

    colorizer = Colorizer(args.model, engine="torch")
    plain = copy.copy(colorizer)
    plain.model = copy.copy(colorizer.model)
    plain.model.config = dataclasses.replace(colorizer.model.config, hint_spread=0.0)
    paths = list_images(args.folder)
    names = ["gray + points", "no points", f"{args.points} points, no spreading", f"{args.points} points", "truth"]
    rows = []
    for index in args.photos:
        truth = read_rgb(paths[index])
        photo = Photo(lightness=cielab_lightness(truth))
        hints = hints_from_truth(truth, args.points, seed=index)
        results = [colorize_with_hints(colorizer, photo, []), colorize_with_hints(plain, photo, hints),
                   colorize_with_hints(colorizer, photo, hints)]
        print(paths[index].name, "PSNR", " / ".join(f"{metrics.psnr(r, truth):.2f}" for r in results))
        gray = _tile(gray_baseline(truth), args.height)
        draw, scale = ImageDraw.Draw(gray), args.height / truth.shape[0]
        for h in hints:
            x, y, r = h.x * scale, h.y * scale, 4
            draw.ellipse((x - r, y - r, x + r, y + r), fill=h.rgb, outline="white", width=2)
        rows.append([gray] + [_tile(r, args.height) for r in results] + [_tile(truth, args.height)])
    gap, label = 6, 18
    widths = [max(row[i].width for row in rows) for i in range(len(names))]
    sheet = Image.new("RGB", (sum(widths) + gap * (len(widths) - 1), label + len(rows) * (args.height + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(names):
        draw.text((sum(widths[:i]) + gap * i + 2, 3), name, fill="black")
    for j, row in enumerate(rows):
        for i, tile in enumerate(row):
            sheet.paste(tile, (sum(widths[:i]) + gap * i, label + j * (args.height + gap)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88)
    print(f"{args.out}: {sheet.width}x{sheet.height}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
