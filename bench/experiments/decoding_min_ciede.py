"""Experiment: annealed mean vs decoding to the minimum expected CIEDE2000, on validation crops."""
import sys

import numpy as np
import torch
from skimage.color import deltaE_ciede2000

from common import rgb, validation_logits
from tinct.evaluate.scoring import TargetScorer
from tinct.models import ab_bins, load

torch.set_num_threads(1)
ckpt = sys.argv[1]
model, _ = load(ckpt)
lights, abs_, logits = validation_logits(model, ckpt)
score = TargetScorer([rgb(l, ab) for l, ab in zip(lights, abs_)])
print("gray", score([rgb(l, torch.zeros_like(ab)) for l, ab in zip(lights, abs_)]), flush=True)

C = model.bin_centers
lab = np.zeros((len(C), 3))
lab[:, 0] = 50  # with equal L, CIEDE2000 depends on ab only
lab[:, 1:] = C.numpy()
D = torch.from_numpy(deltaE_ciede2000(lab[:, None, :], lab[None, :, :])).float()  # (Q, Q)
logw = model.class_weights.log()[None, :, None, None]


def run(decoder):
    outs = []
    with torch.inference_mode():
        for l, z in zip(lights, logits):
            ab = torch.nn.functional.interpolate(decoder(z[None]), size=l.shape[-2:], mode="bilinear", align_corners=False)
            outs.append(rgb(l, ab[0]))
    return score(outs)


def annealed(T, beta):
    return lambda z: ab_bins.annealed_mean(z - beta * logw, C, T)


def min_ciede(beta, tau):
    def decode(z):
        p = torch.softmax(z - beta * logw, dim=1)
        expected = torch.einsum("bqhw,qk->bkhw", p, D)
        return torch.einsum("bkhw,kc->bchw", torch.softmax(-expected / tau, dim=1), C)
    return decode


mode = sys.argv[2] if len(sys.argv) > 2 else "both"
grid = []
if mode in ("both", "annealed"):
    grid += [("annealed", dict(T=T, beta=b)) for b in (0.3, 0.5, 1.0) for T in (0.5, 1.0)]
if mode in ("both", "ciede"):
    grid += [("minciede", dict(beta=b, tau=tau)) for b in (0.0, 0.3, 0.6, 1.0) for tau in (0.05, 0.3, 1.0)]
for name, kw in grid:
    print(name, kw, run(annealed(**kw) if name == "annealed" else min_ciede(**kw)), flush=True)
