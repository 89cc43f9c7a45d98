import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from video_para.geometry import Camera
from video_para.models import Policy, PolicyConfig, Stats
from video_para.models.backbones import BACKBONES
from video_para.models.backbones.dino import DinoBackboneConfig, tiny_model
from video_para.models.backbones.svd import SvdBackboneConfig
from video_para.models.backbones.svd_components import tiny_components
from video_para.models.backbones.tiny import TinyBackboneConfig
from video_para.models.heads.global_mlp import GlobalMLPHeadConfig
from video_para.models.heads.motion_tracks import MotionTracksHeadConfig
from video_para.models.heads.para import ParaHeadConfig

# 2 shared cores: more than one intra-op thread per process oversubscribes them (10-50x slower)
torch.set_num_threads(1)
STATS = Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5)
SIZE = {"tiny": 32, "svd": 64, "dino": 56}


def backbone_config(kind, **kw):
    if kind == "tiny":
        return TinyBackboneConfig(channels=16, n_down=1, n_blocks=1, **kw)
    if kind == "svd":
        return SvdBackboneConfig(preset="tiny", n_frames=2, tap_blocks=[0, 1], feature_size=8, **kw)
    return DinoBackboneConfig(preset="tiny", **kw)


def batch(size, B=2, N=3, T=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(B, 3, size, size, generator=g)
    return {"image": image,
            "start_pixel": torch.rand(B, 2, generator=g) * size,
            "target_pixels": torch.rand(B, N, 2, generator=g) * size,
            "target_height": torch.rand(B, N, generator=g) * 0.3,
            "target_gripper": torch.randint(0, 2, (B, N), generator=g).float(),
            "target_xyz": torch.zeros(B, N, 3),
            "clip": torch.cat([image[:, None], torch.rand(B, T - 1, 3, size, size, generator=g)], 1)}  # frame 0 = now


def policy_config(kind, head, **kw):
    head_cfg = {"para": ParaHeadConfig(hidden_channels=16, n_height_bins=8, n_gripper_bins=4),
                "global_mlp": GlobalMLPHeadConfig(hidden_dim=32),
                "motion_tracks": MotionTracksHeadConfig(hidden_channels=16, hidden_dim=32)}[head]
    return PolicyConfig(backbone=backbone_config(kind, **kw), head=head_cfg, n_window=3,
                        image_height=SIZE[kind], image_width=SIZE[kind])


@pytest.mark.parametrize("head", ["para", "global_mlp", "motion_tracks"])
@pytest.mark.parametrize("kind", ["tiny", "svd", "dino"])
def test_policy_on_each_backbone_fits_a_fixed_batch(kind, head):
    torch.manual_seed(0)
    # the aux diffusion loss samples sigma per step: leave it out so the head loss is comparable
    policy = Policy(policy_config(kind, head, **({"aux_loss": False} if kind == "svd" else {})), STATS)
    b = batch(SIZE[kind])
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=3e-3)
    policy.eval()  # fixed feature noise for svd: the loss sequence is deterministic
    losses = []
    for _ in range(6):
        loss = policy.compute_loss(b)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # a motion-tracks regressor first sees near-uniform heatmaps, so the same image-centre track for
    # every sample, and can only fit the batch mean until the tracks separate (tiny: -7% in 6 steps)
    assert losses[-1] < (0.95 if head == "motion_tracks" else 0.9) * losses[0], losses


def from_local_weights(kind, weights):
    """A backbone config that loads `pretrained` from a local folder written here (a stand-in for hub
    weights); the tiny CNN has no pretrained weights."""
    torch.manual_seed(1)
    if kind == "svd":
        tiny_components().save_pretrained(weights)
        return SvdBackboneConfig(pretrained=str(weights), n_frames=2, tap_blocks=[0, 1], feature_size=8)
    if kind == "dino":
        tiny_model("v2").save_pretrained(weights)
        return DinoBackboneConfig(pretrained=str(weights))
    return backbone_config(kind)


@pytest.mark.parametrize("head", ["para", "global_mlp", "motion_tracks"])
@pytest.mark.parametrize("kind", ["tiny", "svd", "dino"])
def test_saved_policy_predicts_identically_after_its_backbone_weights_are_deleted(tmp_path, kind, head, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = policy_config(kind, head)
    cfg.backbone = from_local_weights(kind, tmp_path / "weights")
    torch.manual_seed(0)
    policy = Policy(cfg, STATS)
    policy.save_pretrained(tmp_path / "p")
    shutil.rmtree(tmp_path / "weights", ignore_errors=True)
    loaded = Policy.from_pretrained(tmp_path / "p")
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    size = SIZE[kind]
    cam = Camera.spherical([0, 0, 0], 1.0, 60, 200, Camera.intrinsics(60, size, size), size, size)
    image, ee = batch(size)["image"][0].permute(1, 2, 0).numpy(), np.array([0.02, -0.03, 0.05])
    a, c = (p.predict(image, cam, ee, support_z=0.02) for p in (policy, loaded))
    # bit-identical, but for the SVD UNet's float32 rounding on the loaded tensors (state dicts equal),
    # which PARA's sub-pixel decoding passes on to the actions (~1e-7 m)
    tol = {"rtol": 1e-6, "atol": 1e-6} if kind == "svd" else {"rtol": 0, "atol": 0}
    np.testing.assert_allclose(c.actions, a.actions, **tol)
    np.testing.assert_allclose(c.pixels, a.pixels, **tol)


def test_dino_loads_a_hub_id_from_the_local_hub_cache(tmp_path):
    """Offline, a hub id resolves through the HF cache (here a cache folder written by hand)."""
    snapshot = tmp_path / "hub" / "models--org--tiny-dino" / "snapshots" / "0123abc"
    tiny_model("v2").save_pretrained(snapshot)
    (tmp_path / "hub" / "models--org--tiny-dino" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny-dino" / "refs" / "main").write_text("0123abc")
    code = ("from video_para.models.backbones.dino import DinoBackbone, DinoBackboneConfig; "
            "print(DinoBackbone(DinoBackboneConfig(pretrained='org/tiny-dino'), (56, 56)).out_channels)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "32", run.stderr[-2000:]


@pytest.mark.parametrize("kind", ["tiny", "svd", "dino"])
def test_frozen_mode_has_no_trainable_backbone_params_and_stays_eval(kind):
    bb = BACKBONES.build(backbone_config(kind, mode="frozen"), (SIZE[kind],) * 2)
    bb.train()
    assert not any(p.requires_grad for p in bb.parameters())
    assert not any(m.training for m in bb.modules())


@pytest.mark.parametrize("kind", ["svd", "dino"])
def test_start_keypoint_changes_features_only_through_its_cell(kind):
    torch.manual_seed(0)
    size = SIZE[kind]
    bb = BACKBONES.build(backbone_config(kind), (size, size)).eval()
    image = torch.rand(1, 3, size, size)
    with torch.no_grad():
        f1 = bb(image, torch.tensor([[1.0, 1.0]])).features
        f2 = bb(image, torch.tensor([[size - 1.0, size - 1.0]])).features
        f3 = bb(image, torch.tensor([[1.5, 0.5]])).features   # same cell as f1
    assert not torch.allclose(f1, f2)
    assert torch.equal(f1, f3)


def test_dino_grid_skips_register_tokens_and_rejects_bad_sizes():
    bb = BACKBONES.build(DinoBackboneConfig(preset="tiny", version="v3"), (64, 48))
    assert (bb.n_prefix, bb.grid, bb.patch) == (5, (4, 3), 16)
    out = bb(torch.rand(2, 3, 64, 48), torch.tensor([[1.0, 1.0], [40.0, 60.0]])).features
    assert out.shape == (2, 32, 4, 3)
    with pytest.raises(ValueError, match="multiple of the patch size 14"):
        BACKBONES.build(DinoBackboneConfig(preset="tiny"), (60, 56))
    with pytest.raises(ValueError, match=r"expects images \(B, 3, 56, 56\)"):
        BACKBONES.build(DinoBackboneConfig(preset="tiny"), (56, 56))(torch.rand(1, 3, 42, 42), torch.zeros(1, 2))


@pytest.mark.parametrize("name, cls", [("svd", SvdBackboneConfig), ("svd_tiny", SvdBackboneConfig),
                                       ("dino", DinoBackboneConfig), ("dino_tiny", DinoBackboneConfig),
                                       ("dinov3", DinoBackboneConfig)])
def test_backbone_yaml_configs_load(name, cls):
    from video_para.config import load_config
    cfg = load_config(PolicyConfig, [f"backbone=@backbone/{name}"]).backbone
    assert type(cfg) is cls
