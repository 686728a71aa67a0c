"""Experiment: commit-or-abstain decoding on held-out *whole* photos of the training folders.

After the annealed mean, each predicted ab vector of chroma c keeps its hue and gets chroma
``k * max(c - c0, 0)``: faint, uncertain tints (which CIEDE2000 punishes hardest on the many
near-neutral pixels of a photo) go to gray, confident colours are kept or strengthened.

    .venv/bin/python bench/experiments/chroma_threshold.py runs/tinct-w32-e12/best.safetensors 192 \
        [T/beta,T/beta,...] [c0,c0,...] [k,k,...]
"""
import os
import sys

import torch

from common import held_out_keys, read_held_out
from tinct.infer import Colorizer
from tinct.models.ab_bins import commit_chroma
from tinct.models import load

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
ckpt, size = sys.argv[1], int(sys.argv[2])
args = sys.argv[3:] + ["0.5/0.4,0.5/0.5,0.65/0.5", "0,3,6,9", "1,1.2,1.4"][len(sys.argv[3:]):]
bases = [tuple(float(v) for v in pair.split("/")) for pair in args[0].split(",")]
thresholds = [float(v) for v in args[1].split(",")]
gains = [float(v) for v in args[2].split(",")]

model = load(ckpt)
model.config.input_size = size
photos, score = read_held_out(held_out_keys(model))
colorizer = Colorizer(model)
with torch.inference_mode():
    outputs = []
    for p in photos:
        squares, boxes = colorizer.working_squares([p])
        outputs.append((model(squares), boxes[0]))
for T, beta in bases:
    model.config.temperature, model.config.prior_correction = T, beta
    with torch.inference_mode():
        abs_ = [colorizer.crop_to_content(model.decode(out), [box])[0] for out, box in outputs]
    for c0 in thresholds:
        for k in gains:
            if c0 == 0 and k != 1.0:
                continue
            outs = [colorizer.compose(p, commit_chroma(ab[None], c0, k)[0]) for p, ab in zip(photos, abs_)]
            print(dict(T=T, beta=beta, c0=c0, k=k), score(outs), flush=True)
