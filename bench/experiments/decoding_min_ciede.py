"""Experiment: decoders for a bins-head checkpoint on its validation split (not shipped code)."""
import sys, os, json, itertools
import numpy as np, torch
torch.set_num_threads(1)
from tinct.color import lab_to_rgb_torch, to_uint8
from tinct.data import DataConfig, make_datasets
from tinct.metrics import chroma_ratio, ciede2000, mean_chroma, psnr, colorfulness, delta_colorfulness
from tinct.models import load, ab_bins
from skimage.color import deltaE_ciede2000

ckpt = sys.argv[1]
model = load(ckpt)
info = model.checkpoint_info
cache = f"/tmp/val_logits_{os.path.basename(os.path.dirname(ckpt))}_{os.path.basename(ckpt)}.pt"
if os.path.exists(cache):
    lights, abs_, logits = torch.load(cache)
else:
    dc = DataConfig.from_dict(info["extra"]["data_config"])
    _, val = make_datasets(dc, seed=0)
    lights, abs_, logits = [], [], []
    with torch.inference_mode():
        for i in range(len(val)):
            it = val[i]; lights.append(it["l"]); abs_.append(it["ab"]); logits.append(model(it["l"][None])[0])
    torch.save((lights, abs_, logits), cache)

def rgb(l, ab):
    return to_uint8(lab_to_rgb_torch(torch.cat([l, ab], 0), dim=0).permute(1, 2, 0).numpy())
truths = [rgb(l, ab) for l, ab in zip(lights, abs_)]
tchroma = [mean_chroma(t) for t in truths]; tcf = [colorfulness(t) for t in truths]
def scores(outs):
    return dict(psnr=np.mean([psnr(o, t) for o, t in zip(outs, truths)]),
                ciede=np.mean([ciede2000(o, t) for o, t in zip(outs, truths)]),
                chroma=chroma_ratio([mean_chroma(o) for o in outs], tchroma),
                dcf=delta_colorfulness([colorfulness(o) for o in outs], tcf))
gray = scores([rgb(l, torch.zeros_like(ab)) for l, ab in zip(lights, abs_)])
print("gray", {k: round(float(v), 3) for k, v in gray.items()}, "truth CF", np.mean(tcf), flush=True)

C = model.bin_centers
lab = np.zeros((len(C), 3)); lab[:, 0] = 50; lab[:, 1:] = C.numpy()
D = torch.from_numpy(deltaE_ciede2000(lab[:, None, :], lab[None, :, :])).float()  # (Q, Q)
logw = model.class_weights.log()[None, :, None, None]

def run(decoder):
    outs = []
    with torch.inference_mode():
        for l, z in zip(lights, logits):
            ab = decoder(z[None])
            ab = torch.nn.functional.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)[0]
            outs.append(rgb(l, ab))
    return scores(outs)

def annealed(T, beta):
    return lambda z: ab_bins.annealed_mean(z - beta * logw, C, T)

def min_ciede(beta, tau, Tp=1.0):
    def dec(z):
        p = torch.softmax((z - beta * logw) / Tp, dim=1)
        E = torch.einsum("bqhw,qk->bkhw", p, D)
        w = torch.softmax(-E / tau, dim=1)
        return torch.einsum("bkhw,kc->bchw", w, C)
    return dec

mode = sys.argv[2] if len(sys.argv) > 2 else "both"
grid = []
if mode in ("both", "annealed"):
    grid += [("annealed", dict(T=T, beta=b)) for b in (0.3, 0.5, 1.0) for T in (0.5, 1.0)]
if mode in ("both", "ciede"):
    grid += [("minciede", dict(beta=b, tau=tau)) for b in (0.0, 0.3, 0.6, 1.0) for tau in (0.05, 0.3, 1.0)]
for name, kw in grid:
    s = run(annealed(**kw) if name == "annealed" else min_ciede(**kw))
    print(name, kw, {k: round(float(v), 3) for k, v in s.items()}, flush=True)
