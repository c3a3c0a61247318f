"""Default `gated` on both tuning erases, plus a contact sheet of the 256 tuning faces."""
import time
import torch
torch.set_num_threads(1)
from PIL import Image
from common import Probe, OUT, SEEDS
import numpy as np

for name in ["remove-headwear", "remove-glasses"]:
    p = Probe(name)
    if name == "remove-headwear":  # contact sheet of tuning faces, 16 x 16
        b = p.before
        sheet = b.reshape(16, 16, 64, 64, 3).transpose(0, 2, 1, 3, 4).reshape(1024, 1024, 3)
        Image.fromarray(sheet).save(OUT / "tuning_2000-2255_sheet.png")
    print(name, "top", [SEEDS[i] for i in p.top_idx], "random", [SEEDS[i] for i in p.rand_idx], "silent n", int(p.silent.sum()))
    t = time.time()
    d = p.session.compute(p.spec, p.inputs)
    p.measure("default-gated", delta=d, extra={"fit_s": time.time() - t, "kept_share": d.kept_share, "cal_silent": d.silent_change})
