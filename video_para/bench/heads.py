"""PARA head vs the naive volume head at the paper's shapes: time and peak memory of forward +
backward, loss agreement, and decode + lift latency for one observation."""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ..geometry import Camera
from ..models.gripper import filter_gripper, snap_to_lowest
from ..models.heads.para import ParaHead, ParaHeadConfig
from ..models.heads.para_reference import naive_loss
from ..models.heads.subpixel import MODES
from ..models.stats import Stats


def _rss_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_bytes(fn) -> int:
    """Peak resident memory added by fn(): reset the high-water mark (Linux clear_refs 5), run,
    read VmHWM. There is no CPU counterpart of torch.cuda.max_memory_allocated. malloc_trim first
    hands freed heap pages back: otherwise a small run reuses what the warm-up freed and adds ~0."""
    import ctypes
    import gc
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    base = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    fn()
    return (_rss_kib("VmHWM") - base) * 1024


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m video_para.bench heads")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--channels", type=int, default=384)
    ap.add_argument("--feat", type=int, default=28)
    ap.add_argument("--out", type=int, default=448)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    stats = Stats(0.0, 0.3, 0.0, 1.0)
    cfg = ParaHeadConfig(num_conv_layers=0)
    head = ParaHead(cfg, a.channels, 12, (a.out, a.out), stats)
    B = a.batch
    feats = torch.randn(B, a.channels, a.feat, a.feat)
    batch = {"target_pixels": torch.rand(B, 12, 2) * a.out, "target_height": torch.rand(B, 12) * 0.3,
             "target_gripper": torch.rand(B, 12)}

    def ours():
        head.zero_grad()
        head.loss(head(feats), batch)["loss"].backward()

    def naive():
        head.zero_grad()
        naive_loss(head, feats, batch)["loss"].backward()

    print(f"PARA head, B={B} C={a.channels} {a.feat}x{a.feat} -> {a.out}x{a.out}, N_W=12 N_H=N_G=32, "
          f"{torch.get_num_threads()} threads")
    with torch.no_grad():
        l1, l2 = head.loss(head(feats), batch), naive_loss(head, feats, batch)
    diff = max(abs(l1[k].item() - l2[k].item()) for k in l1)
    res = {}
    for name, fn in (("factored", ours), ("naive volume", naive)):
        fn()  # warm-up
        times = []
        for _ in range(a.repeats):
            times.append(time.perf_counter())
            fn()
            times[-1] = time.perf_counter() - times[-1]
        peak = _peak_bytes(fn)
        res[name] = (float(np.median(times)), peak)
        print(f"  {name:13s} fwd+bwd {res[name][0] * 1e3:9.1f} ms   peak RSS +{peak / 2**20:8.1f} MiB")
    (t1, m1), (t2, m2) = res["factored"], res["naive volume"]
    print(f"  speed-up {t2 / t1:.1f}x   memory ratio {m2 / max(m1, 1):.1f}x   max |loss diff| {diff:.2e}")

    # decode + lift for one observation, per peak decoding (the control path skips the full-resolution
    # heatmaps; the last line adds them, as overlays need)
    cam = Camera.spherical([0, 0, 0], 1.2, 50, 0, Camera.intrinsics(60, a.out, a.out), a.out, a.out).torch()
    cam1 = Camera(cam.K[None], cam.world_from_cam[None], a.out, a.out)
    with torch.no_grad():
        out = head(feats[:1])
        for mode, heatmaps in [(m, False) for m in MODES] + [(ParaHeadConfig.subpixel, True)]:
            head.cfg.subpixel = mode

            def step():
                dec = head.decode(out, heatmaps=heatmaps)
                cam1.lift(dec.pixels, dec.heights, torch.zeros(1, 1))
            for _ in range(5):
                step()
            n = 50
            t0 = time.perf_counter()
            for _ in range(n):
                step()
            dt = (time.perf_counter() - t0) / n
            print(f"  decode + lift, batch 1, subpixel={mode}{' (default)' if mode == ParaHeadConfig.subpixel else ''}"
                  f"{' + heatmap probabilities' if heatmaps else ''}: {dt * 1e3:.2f} ms")

    # the chunk-level gripper decoding every head's chunk goes through after that (the tiny presets' setting)
    gripper, z = (torch.rand(1, 12) > 0.5).float(), torch.rand(1, 12)
    for name, fn in [("one_switch", lambda: filter_gripper(gripper, "one_switch")),
                     ("one_switch + snap lowest (window 1)", lambda: snap_to_lowest(filter_gripper(gripper, "one_switch"), z, 1))]:
        for _ in range(5):
            fn()
        t0 = time.perf_counter()
        for _ in range(200):
            fn()
        print(f"  gripper decoding, batch 1, {name}: {(time.perf_counter() - t0) / 200 * 1e3:.3f} ms")
