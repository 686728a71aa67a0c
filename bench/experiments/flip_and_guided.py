"""Experiment: flip averaging and guided-filter upsampling of ab, on validation crops."""
import sys

import torch
import torch.nn.functional as F

from common import guided, rgb, validation_logits
from tinct.evaluate.scoring import TargetScorer as Scorer
from tinct.models import ab_bins, load

torch.set_num_threads(1)
ckpt = sys.argv[1]
model, _ = load(ckpt)
lights, abs_, logits = validation_logits(model, ckpt)
with torch.inference_mode():
    flipped = [model(l[None].flip(-1))[0].flip(-1) for l in lights]
score = Scorer([rgb(l, ab) for l, ab in zip(lights, abs_)])
C = model.bin_centers
logw = model.class_weights.log()[None, :, None, None]


def run(T, beta, tta, r, eps):
    outs = []
    with torch.inference_mode():
        for l, z, fz in zip(lights, logits, flipped):
            zz = (z + fz) / 2 if tta else z
            ab = ab_bins.annealed_mean(zz[None] - beta * logw, C, T)
            ab = F.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)
            if r:
                ab = guided(l[None] / 100, ab, r, eps)
            outs.append(rgb(l, ab[0]))
    return score(outs)


for T, beta in ((0.5, 0.3), (0.5, 0.5)):
    for tta, r, eps in ((0, 0, 0), (1, 0, 0), (0, 4, 1e-3), (0, 4, 1e-2), (0, 8, 1e-3), (0, 2, 1e-4)):
        print(dict(T=T, beta=beta, tta=tta, r=r, eps=eps), run(T, beta, tta, r, eps), flush=True)
