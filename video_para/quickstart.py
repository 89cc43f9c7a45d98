"""`make quickstart` — placeholder until the main job (issue #9) lands.

Runs the smallest end-to-end path that exists: build a tiny PARA policy, overfit a handful of
random samples, save it, reload it and predict one action chunk through the camera lift."""
from __future__ import annotations

import tempfile
import time

import numpy as np
import torch

from .geometry import Camera
from .models import Policy, PolicyConfig, Stats


def main() -> None:
    t0 = time.time()
    torch.manual_seed(0)
    cfg = PolicyConfig(image_height=64, image_width=64, n_window=4)
    policy = Policy(cfg, Stats(0.0, 0.3, 0.0, 1.0))
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.rand(4, 3, 64, 64, generator=g), "start_pixel": torch.full((4, 2), 32.0),
             "target_pixels": torch.randint(4, 60, (4, 4, 2), generator=g).float() + 0.5,
             "target_height": torch.rand(4, 4, generator=g) * 0.3, "target_gripper": torch.rand(4, 4, generator=g)}
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    for step in range(150):
        loss = policy.compute_loss(batch)
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
        if step % 50 == 0:
            print(f"step {step:3d}  " + "  ".join(f"{k} {v.item():.3f}" for k, v in loss.items()))
    with tempfile.TemporaryDirectory() as d:
        policy.save_pretrained(d + "/policy")
        loaded = Policy.from_pretrained(d + "/policy")
    cam = Camera.spherical([0, 0, 0], 1.0, 60, 180, Camera.intrinsics(60, 64, 64), 64, 64)
    image = (batch["image"][0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    chunk = loaded.predict(image, cam, np.zeros(3))
    print("predicted action chunk (world xyz + gripper):\n", np.round(chunk.actions, 3))
    print(f"quickstart (placeholder for issue #9) finished in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
