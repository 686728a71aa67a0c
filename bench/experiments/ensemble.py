"""Experiment: averaging the log-probabilities of two bins-head checkpoints, on validation crops."""
import sys

import torch
import torch.nn.functional as F

from common import rgb, validation_logits
from tinct.evaluate.scoring import TargetScorer
from tinct.models import ab_bins, load

torch.set_num_threads(1)
a_path, b_path = sys.argv[1], sys.argv[2]
(ma, _), (mb, _) = load(a_path), load(b_path)
lights, abs_, la = validation_logits(ma, a_path)  # both checkpoints share the data config and split
with torch.inference_mode():
    lb = [mb(l[None])[0] for l in lights]
score = TargetScorer([rgb(l, ab) for l, ab in zip(lights, abs_)])
C = ma.bin_centers
wa, wb = ma.class_weights.log()[None, :, None, None], mb.class_weights.log()[None, :, None, None]


def run(mix, T, beta):
    outs = []
    with torch.inference_mode():
        for l, za, zb in zip(lights, la, lb):
            z = mix * F.log_softmax(za[None] - beta * wa, 1) + (1 - mix) * F.log_softmax(zb[None] - beta * wb, 1)
            ab = F.interpolate(ab_bins.annealed_mean(z, C, T), size=l.shape[-2:], mode="bilinear", align_corners=False)
            outs.append(rgb(l, ab[0]))
    return score(outs)


for beta in (0.25, 0.4):
    for mix in (1.0, 0.0, 0.5):
        print(dict(mix=mix, T=0.5, beta=beta), run(mix, 0.5, beta), flush=True)
