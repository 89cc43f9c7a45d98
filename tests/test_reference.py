"""Committed reference outputs for every tiny backbone x head: a fixed seed and batch -> the loss
terms and the decoded action chunks, within float tolerance. A refactor that changes a number fails
here. After a deliberate change of numbers (new init, new loss, a library upgrade that re-draws
random weights), regenerate and commit tests/reference/ with the reason:

    OMP_NUM_THREADS=1 .venv/bin/python tests/test_reference.py
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from test_backbones import SIZE, STATS, batch, policy_config
from video_para.geometry import Camera
from video_para.models import Policy

torch.set_num_threads(1)
REFERENCE = Path(__file__).parent / "reference" / "outputs.json"
COMBOS = [f"{kind}/{head}" for kind in ("tiny", "svd", "dino") for head in ("para", "global_mlp", "motion_tracks")]
EE = np.array([[0.02, -0.03, 0.05], [-0.04, 0.01, 0.12]])   # current EE per sample (in view)


def outputs(combo: str) -> dict:
    """Loss terms in train mode (dropout, the SVD diffusion loss's noise: seeded) and the chunks
    predict() returns for the batch's images in eval mode."""
    kind, head = combo.split("/")
    size = SIZE[kind]
    torch.manual_seed(0)
    policy = Policy(policy_config(kind, head), STATS)
    b = batch(size)
    b["target_xyz"] = torch.rand(b["target_xyz"].shape, generator=torch.Generator().manual_seed(1)) * 0.2
    torch.manual_seed(2)
    terms = {k: v.item() for k, v in policy.train().compute_loss(b).items()}
    cam = Camera.spherical([0, 0, 0], 1.0, 60, 200, Camera.intrinsics(60, size, size), size, size)
    chunks = [policy.predict(img.permute(1, 2, 0).numpy(), cam, ee, support_z=0.02)
              for img, ee in zip(b["image"], EE)]
    return {"loss": terms, "actions": [c.actions.tolist() for c in chunks],
            "pixels": [c.pixels.tolist() for c in chunks]}


@pytest.mark.parametrize("combo", COMBOS)
def test_losses_and_actions_match_the_committed_reference(combo):
    expected, got = json.loads(REFERENCE.read_text())[combo], outputs(combo)
    assert got["loss"].keys() == expected["loss"].keys()
    for key in ("loss", "actions", "pixels"):
        want = list(expected[key].values()) if key == "loss" else expected[key]
        have = list(got[key].values()) if key == "loss" else got[key]
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-5, err_msg=f"{combo} {key}")


if __name__ == "__main__":
    REFERENCE.parent.mkdir(exist_ok=True)
    combos = {c: outputs(c) for c in COMBOS}   # one line per combo and key: small, readable diffs
    REFERENCE.write_text("{\n" + ",\n".join(f'"{c}": {{\n' + ",\n".join(f' "{k}": {json.dumps(v)}' for k, v in o.items())
                                             + "}" for c, o in combos.items()) + "\n}\n")
    print(f"wrote {REFERENCE}", file=sys.stderr)
