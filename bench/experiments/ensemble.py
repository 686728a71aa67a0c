"""Experiment: averaging the log-probabilities of two bins-head checkpoints on validation."""
import sys, os
import numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
from tinct.color import lab_to_rgb_torch, to_uint8
from tinct.metrics import chroma_ratio, ciede2000, mean_chroma, psnr, colorfulness, delta_colorfulness
from tinct.models import load, ab_bins

a_path, b_path = sys.argv[1], sys.argv[2]
ma, mb = load(a_path), load(b_path)
cache = f"/tmp/val_logits_{os.path.basename(os.path.dirname(a_path))}_{os.path.basename(a_path)}.pt"
lights, abs_, la = torch.load(cache)
with torch.inference_mode():
    lb = [mb(l[None])[0] for l in lights]
def rgb(l, ab):
    return to_uint8(lab_to_rgb_torch(torch.cat([l, ab], 0), dim=0).permute(1, 2, 0).numpy())
truths = [rgb(l, ab) for l, ab in zip(lights, abs_)]
tchroma = [mean_chroma(t) for t in truths]; tcf = [colorfulness(t) for t in truths]
def scores(outs):
    return dict(psnr=np.mean([psnr(o, t) for o, t in zip(outs, truths)]),
                ciede=np.mean([ciede2000(o, t) for o, t in zip(outs, truths)]),
                chroma=chroma_ratio([mean_chroma(o) for o in outs], tchroma),
                dcf=delta_colorfulness([colorfulness(o) for o in outs], tcf))
C = ma.bin_centers
wa, wb = ma.class_weights.log()[None, :, None, None], mb.class_weights.log()[None, :, None, None]
def run(mix, T, beta):
    outs = []
    with torch.inference_mode():
        for l, za, zb in zip(lights, la, lb):
            z = mix * F.log_softmax(za[None] - beta * wa, 1) + (1 - mix) * F.log_softmax(zb[None] - beta * wb, 1)
            ab = ab_bins.annealed_mean(z, C, T)
            ab = F.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)[0]
            outs.append(rgb(l, ab))
    return scores(outs)
for beta in (0.25, 0.4):
    for mix in (1.0, 0.0, 0.5):
        s = run(mix, 0.5, beta)
        print(dict(mix=mix, T=0.5, beta=beta), {k: round(float(v), 3) for k, v in s.items()}, flush=True)
