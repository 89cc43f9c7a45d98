import json

import numpy as np
import pytest
import torch

from video_para.config import load_config
from video_para.experiment import ExperimentConfig
from video_para.geometry import Camera
from video_para.models import Policy, PolicyConfig, Stats
from video_para.models.backbones.tiny import TinyBackboneConfig
from video_para.models.heads.global_mlp import GlobalMLPHeadConfig
from video_para.models.heads.para import ParaHeadConfig
from video_para.models.policy import ActionChunk, EpisodicPredictor, queued

STATS = Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5)


def tiny_config(head="para", size=32):
    head_cfg = ParaHeadConfig(hidden_channels=32, n_height_bins=8, n_gripper_bins=4) if head == "para" \
        else GlobalMLPHeadConfig(hidden_dim=64)
    return PolicyConfig(backbone=TinyBackboneConfig(channels=16, n_down=1, n_blocks=1), head=head_cfg,
                        n_window=3, image_height=size, image_width=size)


def camera(size=32):
    return Camera.spherical([0, 0, 0], 1.0, 60, 200, Camera.intrinsics(60, size, size), size, size)


def test_tiny_para_policy_overfits_four_samples_to_exact_pixels():
    torch.manual_seed(0)
    policy = Policy(tiny_config(), STATS)
    g = torch.Generator().manual_seed(3)
    B, N = 4, 3
    batch = {"image": torch.rand(B, 3, 32, 32, generator=g),
             "start_pixel": torch.rand(B, 2, generator=g) * 32,
             # bilinear x2 upsampling (align_corners=False) clamps at the border, so cells 1 and 30 can
             # never be an argmax (cell 0 / 31 always ties or beats them): targets stay off those
             "target_pixels": torch.randint(2, 30, (B, N, 2), generator=g).float() + 0.5,
             "target_height": torch.rand(B, N, generator=g) * 0.3,
             "target_gripper": torch.randint(0, 2, (B, N), generator=g).float(),
             "target_xyz": torch.zeros(B, N, 3)}
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    for _ in range(500):
        loss = policy.compute_loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    with torch.no_grad():
        out = policy.backbone(batch["image"], batch["start_pixel"])
        dec = policy.head.decode(policy.head(out.features))
    # the default sub-pixel decoding lands on the target cell centres to ~1e-4 px
    torch.testing.assert_close(dec.pixels, batch["target_pixels"], atol=1e-3, rtol=0)
    assert torch.equal(policy.head.height_bins.encode(dec.heights), policy.head.height_bins.encode(batch["target_height"]))
    assert torch.equal(dec.gripper.round(), batch["target_gripper"])


def test_temporal_ensembling_averages_every_chunk_covering_the_tick_as_act_does():
    """ensemble_decay m: a prediction every tick; tick t's action is the exp(-m i)-weighted mean (i = 0 the
    oldest) of the actions for t of the chunks predicted at t-N+1 ... t (ACT's temporal ensembling)."""
    N, m = 3, 0.5

    class Counting:
        calls = 0

        def predict(self, image, camera, ee_pos, support_z):
            k, self.calls = self.calls, self.calls + 1
            return ActionChunk(np.c_[10.0 * k + np.arange(N), np.full((N, 2), k), np.ones(N)], np.zeros((N, 2)), None)

    agent = queued(Counting())
    agent.ensemble_decay = m
    for episode in range(2):
        agent.reset()
        agent.predictor.calls = 0
        for t in range(6):
            got = agent.select_action({"image": None, "camera": None, "ee_pos": np.zeros(3)})
            chunks = [k for k in range(t + 1) if t - k < N]                  # oldest first
            w = np.exp(-m * np.arange(len(chunks)))
            x = sum(wi * (10.0 * k + t - k) for wi, k in zip(w, chunks)) / w.sum()
            np.testing.assert_allclose(got, [x, *(2 * [np.dot(w, chunks) / w.sum()]), 1.0], rtol=1e-12)
        assert agent.predictor.calls == 6 and agent.queued == 0
    policy = Policy(tiny_config(), STATS, run={"eval": {"ensemble_decay": 0.01}})
    assert policy.ensemble_decay == 0.01 and Policy(tiny_config(), STATS).ensemble_decay is None
    with pytest.raises(ValueError, match="ensemble_decay"):
        load_config(ExperimentConfig, ["eval.ensemble_decay=-1"])


@pytest.mark.parametrize("head", ["para", "global_mlp"])
def test_save_load_round_trip_is_bit_identical(tmp_path, head):
    torch.manual_seed(0)
    policy = Policy(tiny_config(head), STATS)
    image = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    cam, ee = camera(), np.array([0.02, -0.03, 0.05])
    a = policy.predict(image, cam, ee, support_z=0.0)
    policy.save_pretrained(tmp_path / "p")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["config.json", "model.safetensors", "stats.json"]
    loaded = Policy.from_pretrained(tmp_path / "p")
    b = loaded.predict(image, cam, ee, support_z=0.0)
    assert np.array_equal(a.actions, b.actions) and np.array_equal(a.pixels, b.pixels)
    assert a.actions.shape == (3, 4)
    policy.save_pretrained(tmp_path / "p")                       # overwrite in place works
    assert [p.name for p in tmp_path.iterdir()] == ["p"]         # and leaves no temp dirs behind


def test_para_predict_lifts_to_the_plane_it_decoded():
    torch.manual_seed(0)
    policy = Policy(tiny_config(), STATS)
    cam = camera()
    chunk = policy.predict(np.zeros((32, 32, 3), np.uint8), cam, np.zeros(3), support_z=0.05)
    np.testing.assert_allclose(cam.project(chunk.actions[:, :3]), chunk.pixels, atol=1e-3)
    assert ((chunk.actions[:, 2] >= 0.05) & (chunk.actions[:, 2] <= 0.35)).all()
    assert chunk.heatmaps.shape == (3, 32, 32)


def test_bad_inputs_give_clear_errors(tmp_path):
    policy = Policy(tiny_config(), STATS)
    with pytest.raises(ValueError, match="image is 16x16 but its camera is calibrated for 32x32"):
        policy.predict(np.zeros((16, 16, 3), np.uint8), camera(), np.zeros(3))
    with pytest.raises(ValueError, match="behind the camera"):
        policy.predict(np.zeros((32, 32, 3), np.uint8), camera(), np.array([5.0, -2.0, 4.0]))
    with pytest.raises(ValueError, match="start keypoint"):
        policy.predict(np.zeros((32, 32, 3), np.uint8), camera(), np.array([1.5, 1.5, 0.0]))
    with pytest.raises(FileNotFoundError, match="not a saved policy"):
        Policy.from_pretrained(tmp_path)
    policy.save_pretrained(tmp_path / "p")
    meta = json.loads((tmp_path / "p" / "config.json").read_text())
    meta["policy"]["head"]["hidden_channels"] = 8
    (tmp_path / "p" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="size mismatch|does not match"):
        Policy.from_pretrained(tmp_path / "p")


def test_frozen_backbone_has_no_trainable_params_or_optimizer_group():
    cfg = tiny_config()
    cfg.backbone.mode = "frozen"
    policy = Policy(cfg, STATS)
    assert not any(p.requires_grad for p in policy.backbone.parameters())
    policy.train()
    assert not policy.backbone.training
    groups = policy.param_groups(1e-6, 1e-4)
    assert [g["name"] for g in groups] == ["head"]
    cfg2 = tiny_config()
    groups = Policy(cfg2, STATS).param_groups(1e-6, 1e-4)
    # the keypoint embedding is new (random init): the head's rate, not the backbone's
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups][:2] == [("backbone", 1e-6, 10), ("backbone_added", 1e-4, 1)]


def test_policy_config_from_overrides():
    cfg = load_config(PolicyConfig, ["head.type=global_mlp", "head.hidden_dim=32", "backbone.channels=8", "n_window=5"])
    assert isinstance(cfg.head, GlobalMLPHeadConfig) and cfg.head.hidden_dim == 32 and cfg.n_window == 5
    with pytest.raises(ValueError, match="hidden_channels"):
        load_config(PolicyConfig, ["head.type=global_mlp", "head.hidden_channels=3"])
    with pytest.raises(ValueError, match="unknown head type 'mlp'"):
        load_config(PolicyConfig, ["head.type=mlp"])
    with pytest.raises(ValueError, match="backbone.mode"):
        load_config(PolicyConfig, ["backbone.mode=sometimes"])


def test_select_action_pops_a_queue_refilled_every_replan_every_steps(tmp_path):
    """LeRobot's interface: one action per call from the chunk's first replan_every actions; reset() empties it."""
    torch.manual_seed(0)
    policy = Policy(tiny_config(), STATS, run={"eval": {"replan_every": 2}})
    calls = []
    predict = policy.predict
    policy.predict = lambda *a: calls.append(a) or predict(*a)
    image = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    obs = {"image": image, "camera": camera(), "ee_pos": np.zeros(3), "support_z": 0.0}
    chunk = predict(image, camera(), np.zeros(3), 0.0)
    got = [policy.select_action(obs) for _ in range(3)]
    assert len(calls) == 2 and policy.queued == 1                   # re-planned at steps 0 and 2
    np.testing.assert_array_equal(got[0], chunk.actions[0])
    np.testing.assert_array_equal(got[1], chunk.actions[1])
    np.testing.assert_array_equal(policy.last_chunk.actions, chunk.actions)
    policy.reset()
    assert policy.queued == 0 and policy.last_chunk is None and policy.replan_every == 2
    policy.select_action(obs)
    assert len(calls) == 3
    # the run it came from travels with the saved policy, and sets its re-planning interval
    del policy.predict
    loaded = Policy.from_pretrained(policy.save_pretrained(tmp_path / "p"))
    assert loaded.run == {"eval": {"replan_every": 2}} and loaded.replan_every == 2
    assert Policy(tiny_config(), STATS).replan_every == 4


def test_queued_resets_an_episodic_predictor_and_wraps_a_plain_one():
    """queued() gives any Predictor the ChunkQueue; reset() also resets one with per-episode state."""
    plan = np.c_[np.arange(12.0), np.zeros((12, 3))]

    class Plain:
        def predict(self, image, camera, ee_pos, support_z):
            return ActionChunk(plan, np.zeros((12, 2)), None)

    class Episodic(Plain):
        resets = 0

        def reset(self):
            self.resets += 1

    obs = {"image": None, "camera": None, "ee_pos": np.zeros(3)}
    plain, episodic = queued(Plain()), queued(Episodic())
    assert isinstance(episodic.predictor, EpisodicPredictor) and not isinstance(plain.predictor, EpisodicPredictor)
    for agent in (plain, episodic):
        agent.reset(replan_every=2)
        assert [agent.select_action(obs)[0] for _ in range(3)] == [0.0, 1.0, 0.0]   # re-planned at step 2
    assert episodic.predictor.resets == 1
    policy = Policy(tiny_config(), STATS)
    assert queued(policy) is policy


def six_step_policy(head, monkeypatch, gripper, z=None, **fields):
    """A tiny 6-step policy whose head decodes as usual, then reports `gripper` (and world heights z)."""
    torch.manual_seed(0)
    cfg = tiny_config(head)
    cfg.n_window = 6
    for k, v in fields.items():
        setattr(cfg, k, v)
    policy = Policy(cfg, STATS)
    decode = policy.head.decode

    def forced(out, *args, **kw):
        dec = decode(out, *args, **kw)
        dec.gripper = torch.tensor([gripper])
        if z is not None and dec.xyz is None:
            dec.heights = torch.tensor([z])         # lifted above support_z = 0
        elif z is not None:
            dec.xyz = dec.xyz.clone()
            dec.xyz[..., 2] = torch.tensor([z])
        return dec
    monkeypatch.setattr(policy.head, "decode", forced)
    return policy


@pytest.mark.parametrize("head", ["para", "global_mlp"])
def test_gripper_snap_moves_the_switch_to_the_lowest_step_for_every_head(head, monkeypatch):
    lows = [0.10, 0.02, 0.01, 0.04, 0.08, 0.12]                     # down, bottom at step 2, up
    policy = six_step_policy(head, monkeypatch, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0], lows, gripper_snap="lowest")
    chunk = policy.predict(np.zeros((32, 32, 3), np.uint8), camera(), np.zeros(3))
    np.testing.assert_allclose(chunk.actions[:, 2], lows, atol=1e-5)
    assert (chunk.actions[:, 3] >= 0.5).tolist() == [False, False, True, True, True, True]
    policy.config.gripper_snap = "none"
    assert (policy.predict(np.zeros((32, 32, 3), np.uint8), camera(), np.zeros(3)).actions[:, 3] >= 0.5).sum() == 3
    with pytest.raises(ValueError, match="gripper_snap"):
        Policy(PolicyConfig(gripper_snap="first"), STATS)


@pytest.mark.parametrize("head", ["para", "global_mlp"])
def test_gripper_filter_applies_to_every_head_in_predict(head, monkeypatch):
    policy = six_step_policy(head, monkeypatch, [0.9, 0.9, 0.1, 0.9, 0.9, 0.9], gripper_filter="one_switch")
    chunk = policy.predict(np.zeros((32, 32, 3), np.uint8), camera(), np.zeros(3))
    assert (chunk.actions[:, 3] >= 0.5).all()
    with pytest.raises(ValueError, match="gripper_filter"):
        Policy(PolicyConfig(gripper_filter="mode"), STATS)
    with pytest.raises(ValueError, match="gripper_filter_width"):
        Policy(PolicyConfig(gripper_filter="median", gripper_filter_width=2), STATS)
