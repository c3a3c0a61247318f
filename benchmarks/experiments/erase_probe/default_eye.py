"""Default gated on remove-headwear again, for the by-eye hat grid (added to common after the first baseline run)."""
import time, torch
torch.set_num_threads(1)
from common import Probe
p = Probe("remove-headwear")
t = time.time(); d = p.session.compute(p.spec, p.inputs)
p.measure("default-gated", delta=d, extra={"fit_s": time.time() - t, "kept_share": d.kept_share, "cal_silent": d.silent_change})
