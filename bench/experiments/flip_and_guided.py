"""Experiment: flip TTA and guided-filter upsampling of ab on the validation split."""
import sys, os
import numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
from tinct.color import lab_to_rgb_torch, to_uint8
from tinct.data import DataConfig, make_datasets
from tinct.metrics import chroma_ratio, ciede2000, mean_chroma, psnr, colorfulness, delta_colorfulness
from tinct.models import load, ab_bins

ckpt = sys.argv[1]
model = load(ckpt)
cache = f"/tmp/val_logits_{os.path.basename(os.path.dirname(ckpt))}_{os.path.basename(ckpt)}.pt"
lights, abs_, logits = torch.load(cache)
with torch.inference_mode():
    flogits = [model(l[None].flip(-1))[0].flip(-1) for l in lights]
def rgb(l, ab):
    return to_uint8(lab_to_rgb_torch(torch.cat([l, ab], 0), dim=0).permute(1, 2, 0).numpy())
truths = [rgb(l, ab) for l, ab in zip(lights, abs_)]
tchroma = [mean_chroma(t) for t in truths]; tcf = [colorfulness(t) for t in truths]
def scores(outs):
    return dict(psnr=np.mean([psnr(o, t) for o, t in zip(outs, truths)]),
                ciede=np.mean([ciede2000(o, t) for o, t in zip(outs, truths)]),
                chroma=chroma_ratio([mean_chroma(o) for o in outs], tchroma),
                dcf=delta_colorfulness([colorfulness(o) for o in outs], tcf))
C = model.bin_centers; logw = model.class_weights.log()[None, :, None, None]

def box(x, r):
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)
def guided(I, p, r, eps):
    mI, mp = box(I, r), box(p, r)
    cov = box(I * p, r) - mI * mp; var = box(I * I, r) - mI * mI
    a = cov / (var + eps); b = mp - a * mI
    return box(a, r) * I + box(b, r)

def run(T, beta, tta, r, eps):
    outs = []
    with torch.inference_mode():
        for l, z, fz in zip(lights, logits, flogits):
            zz = (z + fz) / 2 if tta else z
            ab = ab_bins.annealed_mean(zz[None] - beta * logw, C, T)
            ab = F.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)
            if r:
                ab = guided(l[None] / 100, ab, r, eps)
            outs.append(rgb(l, ab[0]))
    return scores(outs)
for T, beta in ((0.5, 0.3), (0.5, 0.5)):
    for tta, r, eps in ((0, 0, 0), (1, 0, 0), (0, 4, 1e-3), (0, 4, 1e-2), (0, 8, 1e-3), (0, 2, 1e-4)):
        s = run(T, beta, tta, r, eps)
        print(dict(T=T, beta=beta, tta=tta, r=r, eps=eps), {k: round(float(v), 3) for k, v in s.items()}, flush=True)
