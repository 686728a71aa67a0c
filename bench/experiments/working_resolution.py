"""Experiment: working resolution and guided upsampling on held-out *whole* photos of the
training folders (validation split), not cbsd68."""
import sys

import torch
import torch.nn.functional as F

from common import guided, held_out
from tinct.color import lab_to_rgb_uint8
from tinct.infer import Colorizer
from tinct.models import load

torch.set_num_threads(1)
ckpt, T, beta = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
model, info = load(ckpt)
model.config.temperature, model.config.prior_correction = T, beta


def scenes_and_half_the_objects(keys: list[str]) -> list[str]:
    scenes = [k for k in keys if not k.startswith("caltech101")]
    objects = [k for k in keys if k.startswith("caltech101")][::2]
    print(len(scenes), "scene photos,", len(objects), "caltech photos", flush=True)
    return scenes + objects


photos, score = held_out(info, scenes_and_half_the_objects)
for size in (144, 192, 240):
    model.config.input_size = size
    colorizer = Colorizer(model, threads=1)
    abs_ = [colorizer.predict_ab_batch([p])[0] for p in photos]
    for guide in (0, 1):
        outs = []
        for p, ab in zip(photos, abs_):
            h, w = p.lightness.shape
            full = F.interpolate(torch.from_numpy(ab)[None], size=(h, w), mode="bilinear", align_corners=False)
            if guide:
                r = max(2, round(max(h, w) / size * 2))
                full = guided(torch.from_numpy(p.lightness)[None, None].float() / 100, full, r, 1e-3)
            a, b = full[0].numpy()
            outs.append(lab_to_rgb_uint8(p.lightness, a, b))
        print(dict(size=size, guided=guide), score(outs), flush=True)
