"""Experiment: working resolution and guided upsampling on held-out *whole* photos of the
training folders (validation split), not cbsd68."""
import sys, os, json
import numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
from tinct.data import DataConfig
from tinct.data.dataset import make_splits
from tinct.infer import Colorizer
from tinct.io import read_photo, read_rgb
from tinct.color import lab_to_rgb_uint8
from tinct.metrics import chroma_ratio, ciede2000, mean_chroma, psnr, colorfulness, delta_colorfulness
from tinct.models import load

ckpt, T, beta = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
model = load(ckpt)
model.config.temperature, model.config.prior_correction = T, beta
dc = DataConfig.from_dict(model.checkpoint_info["extra"]["data_config"])
val = make_splits(dc, seed=0)["val"]
keys = sorted({val.photo_key(i) for i in range(len(val))})
root = "/work/shared/data"
big = [k for k in keys if not k.startswith("caltech101")]
small = [k for k in keys if k.startswith("caltech101")][::2]
keys = big + small
print(len(big), "scene photos,", len(small), "caltech photos", flush=True)
photos = [read_photo(os.path.join(root, k)) for k in keys]
truths = [read_rgb(os.path.join(root, k)) for k in keys]
tchroma = [mean_chroma(t) for t in truths]; tcf = [colorfulness(t) for t in truths]
def scores(outs):
    return dict(psnr=np.mean([psnr(o, t) for o, t in zip(outs, truths)]),
                ciede=np.mean([ciede2000(o, t) for o, t in zip(outs, truths)]),
                chroma=chroma_ratio([mean_chroma(o) for o in outs], tchroma),
                dcf=delta_colorfulness([colorfulness(o) for o in outs], tcf))
def box(x, r):
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)
def guided(I, p, r, eps):
    mI, mp = box(I, r), box(p, r)
    cov = box(I * p, r) - mI * mp; var = box(I * I, r) - mI * mI
    a = cov / (var + eps); b = mp - a * mI
    return box(a, r) * I + box(b, r)
print("gray", {k: round(float(v), 3) for k, v in scores([lab_to_rgb_uint8(p.lightness, 0 * p.lightness, 0 * p.lightness) for p in photos]).items()}, flush=True)
for size in (144, 192, 240):
    model.config.input_size = size
    col = Colorizer(model, threads=1)
    abs_ = [col.predict_ab_batch([p])[0] for p in photos]
    for guide in (0, 1):
        outs = []
        for p, ab in zip(photos, abs_):
            h, w = p.lightness.shape
            full = F.interpolate(ab[None].float(), size=(h, w), mode="bilinear", align_corners=False)
            if guide:
                r = max(2, round(max(h, w) / size * 2))
                full = guided(torch.from_numpy(p.lightness)[None, None].float() / 100, full, r, 1e-3)
            a, b = full[0].numpy()
            outs.append(lab_to_rgb_uint8(p.lightness, a, b))
        print(dict(size=size, guided=guide), {k: round(float(v), 3) for k, v in scores(outs).items()}, flush=True)
