import pytest
import torch

from video_para.models import Policy, PolicyConfig, Stats
from video_para.models.backbones.svd import (SvdBackbone, SvdBackboneConfig, edm_loss_weight, edm_preconditioning,
                                             tap_channels)
from video_para.models.heads.para import ParaHeadConfig
from video_para.models.backbones.svd_components import load_components, tiny_components

torch.set_num_threads(1)  # see test_backbones.py
STATS = Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5)


def tiny(**kw):
    return SvdBackboneConfig(**{"preset": "tiny", "n_frames": 2, "tap_blocks": [0, 1], "feature_size": 8, **kw})


def test_full_size_unet_taps_give_the_head_1920_channels_at_64x64():
    from accelerate import init_empty_weights
    from diffusers import UNetSpatioTemporalConditionModel
    with init_empty_weights():
        unet = UNetSpatioTemporalConditionModel()   # the SVD img2vid UNet config (diffusers defaults)
    assert abs(sum(p.numel() for p in unet.parameters()) / 1e9 - 1.52) < 0.01
    comps = tiny_components()
    comps.unet = unet
    bb = SvdBackbone(SvdBackboneConfig(), (320, 576), comps)   # hooks on the real 4 up blocks
    assert bb.out_channels == tap_channels(unet.config, [1, 2]) == 1280 + 640
    B, T, (h, w) = 1, 7, (320 // 8, 576 // 8)
    bb.latent_grid = (h, w)   # the tiny VAE downsamples 4x, the real one 8x
    bb.to("meta")
    meta = dict(device="meta")
    feats = bb.tapped_features(torch.zeros(B, T, 4, h, w, **meta), torch.ones(B, **meta),
                               torch.zeros(B, 4, h, w, **meta), torch.zeros(B, 1, 1024, **meta),
                               torch.zeros(B, 3, **meta), torch.tensor([[100.0, 200.0]]))
    assert feats.shape == (B * T, 1920, 64, 64)


def test_diffusion_loss_trains_the_unet_and_is_the_aux_loss_in_training():
    torch.manual_seed(0)
    bb = SvdBackbone(tiny(), (32, 32))
    clip, sp = torch.rand(2, 2, 3, 32, 32), torch.tensor([[3.0, 4.0], [20.0, 30.0]])
    loss = bb.diffusion_loss(clip, sp)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert bb.unet.conv_in.weight.grad.abs().sum() > 0 and bb.keypoint.grad.abs().sum() > 0
    assert all(p.grad is None for p in bb.vae.parameters())
    assert bb(clip[:, 0], sp, clip=clip).aux_loss is not None
    assert bb.eval()(clip[:, 0], sp, clip=clip).aux_loss is None
    assert SvdBackbone(tiny(aux_loss=False), (32, 32))(clip[:, 0], sp, clip=clip).aux_loss is None


def test_loads_saved_components_from_a_local_directory_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    comps = tiny_components()
    comps.save_pretrained(tmp_path)
    a = SvdBackbone(tiny(pretrained=str(tmp_path)), (32, 32), comps).eval()
    b = SvdBackbone(SvdBackboneConfig(pretrained=str(tmp_path), n_frames=2, tap_blocks=[0, 1], feature_size=8),
                    (32, 32)).eval()
    b.keypoint.data.copy_(a.keypoint.data)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    image, sp = torch.rand(1, 3, 32, 32), torch.tensor([[5.0, 6.0]])
    with torch.no_grad():
        assert torch.allclose(a(image, sp).features, b(image, sp).features, atol=1e-4)  # same weights (checked above)


def test_incomplete_weights_directory_names_the_missing_piece(tmp_path):
    tiny_components().unet.save_pretrained(tmp_path / "unet")
    with pytest.raises(FileNotFoundError, match="lacks vae/, image_encoder/, feature_extractor/"):
        load_components(str(tmp_path))


# -- EDM pinned by hand-computed values ---------------------------------------------------------------
def test_edm_preconditioning_equals_hand_computed_constants():
    c_in, c_skip, c_out, c_noise = edm_preconditioning(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    r5 = 5 ** 0.5
    torch.testing.assert_close(c_in, torch.tensor([2 / r5, 2 ** -0.5, 1 / r5], dtype=torch.float64))
    torch.testing.assert_close(c_skip, torch.tensor([0.8, 0.5, 0.2], dtype=torch.float64))
    torch.testing.assert_close(c_out, torch.tensor([-1 / r5, -(2 ** -0.5), -2 / r5], dtype=torch.float64))
    torch.testing.assert_close(c_noise, torch.tensor([-0.17328679514, 0.0, 0.17328679514], dtype=torch.float64))
    torch.testing.assert_close(edm_loss_weight(torch.tensor([0.5, 1.0, 2.0])), torch.tensor([5.0, 2.0, 1.25]))


def _v_target_stub(bb, offset=0.0):
    """A UNet that returns the exact v-target (+ offset), recovering everything from its inputs by
    hand: sigma = exp(4 c_noise), noisy = x_in sqrt(sigma^2+1), clean = latent_scale * cond (every
    frame equals the conditioning frame and noise augmentation is off)."""
    def forward(x, c_noise, context, time_ids, return_dict=False):
        s = (4 * c_noise).exp().view(-1, 1, 1, 1, 1)
        noisy, cond = x[:, :, :4] * (s ** 2 + 1).sqrt(), x[:, :, 4:]
        clean = bb.latent_scale * cond
        v = (clean - noisy / (s ** 2 + 1)) / (-s / (s ** 2 + 1).sqrt())
        return (v + offset,)
    bb.unet.forward = forward


@pytest.mark.parametrize("offset", [0.0, 0.3])
def test_diffusion_loss_is_zero_for_the_exact_v_target_and_weighted_to_the_v_error(offset):
    torch.manual_seed(0)
    bb = SvdBackbone(tiny(noise_aug_strength=0.0), (32, 32)).double().train()
    _v_target_stub(bb, offset)
    frame = torch.rand(3, 1, 3, 32, 32, dtype=torch.float64)
    loss = bb.diffusion_loss(frame.expand(-1, 2, -1, -1, -1))
    # EDM's weight (s^2+1)/s^2 times c_out^2 = s^2/(s^2+1) is 1: a v-error d costs d^2 at every sigma
    assert abs(loss.item() - offset ** 2) < 1e-9, loss.item()


def test_training_sigmas_follow_the_configured_log_normal():
    bb = SvdBackbone(tiny(p_mean=0.7, p_std=1.6), (32, 32)).train()
    log_sigma = bb.sample_sigma(200_000, torch.zeros(1)).log()
    assert abs(log_sigma.mean().item() - 0.7) < 0.02 and abs(log_sigma.std().item() - 1.6) < 0.02


# -- the joint step ----------------------------------------------------------------------------------
def test_joint_step_encodes_each_frame_once_and_rejects_a_clip_not_starting_at_the_image():
    torch.manual_seed(0)
    bb = SvdBackbone(tiny(n_frames=3), (32, 32)).train()
    calls = []
    bb.vae.encoder.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    image = torch.rand(2, 3, 32, 32)
    clip = torch.stack([image, torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)], 1)
    out = bb(image, torch.tensor([[3.0, 4.0], [20.0, 30.0]]), clip=clip)
    assert out.aux_loss is not None
    assert calls == [2, 6]     # the noise-augmented conditioning image, then the 3 clip frames of 2 samples
    with pytest.raises(ValueError, match="frame 0 of the clip must be the image"):
        bb(torch.rand(2, 3, 32, 32), torch.tensor([[3.0, 4.0], [20.0, 30.0]]), clip=clip)


@pytest.mark.parametrize("feature_frames, unet_batch", [(0, 2 * 3), (1, 2 * 1)])
def test_feature_pass_runs_the_unet_on_feature_frames_and_the_loss_on_every_clip_frame(feature_frames, unet_batch):
    torch.manual_seed(0)
    bb = SvdBackbone(tiny(n_frames=3, feature_frames=feature_frames, frame_reduction="learned"), (32, 32)).train()
    batches = []
    bb.unet.conv_in.register_forward_hook(lambda m, a, o: batches.append(a[0].shape[0]))
    image = torch.rand(2, 3, 32, 32)
    clip = torch.stack([image, torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)], 1)
    out = bb(image, torch.tensor([[3.0, 4.0], [20.0, 30.0]]), clip=clip)
    assert batches == [unet_batch, 2 * 3]     # feature pass (B x frames), then the diffusion loss (B x 3)
    assert out.features.shape == (2, bb.out_channels, 8, 8)
    assert bb.frame_logits.shape == (unet_batch // 2,)
    with pytest.raises(ValueError, match="feature_frames must be 0"):
        SvdBackbone(tiny(n_frames=3, feature_frames=4), (32, 32))


@pytest.mark.parametrize("aux", [True, False])
def test_every_trainable_parameter_gets_a_gradient_in_the_joint_step(aux):
    """DDP (find_unused_parameters=False) fails on a trained parameter without a gradient: without the
    diffusion loss, the UNet after the last tapped block must be frozen."""
    torch.manual_seed(0)
    cfg = PolicyConfig(backbone=tiny(aux_loss=aux, tap_blocks=[0], frame_reduction="learned"),
                       head=ParaHeadConfig(hidden_channels=8, n_height_bins=4, n_gripper_bins=4),
                       n_window=2, image_height=32, image_width=32)
    policy = Policy(cfg, STATS)
    policy.freeze_unused("finetune")
    policy.train()
    image = torch.rand(2, 3, 32, 32)
    batch = {"image": image, "start_pixel": torch.tensor([[3.0, 4.0], [20.0, 30.0]]),
             "clip": torch.stack([image, torch.rand(2, 3, 32, 32)], 1),
             "target_pixels": torch.rand(2, 2, 2) * 32, "target_height": torch.rand(2, 2) * 0.3,
             "target_gripper": torch.ones(2, 2), "target_xyz": torch.zeros(2, 2, 3)}
    policy(batch)["loss"].backward()
    trained = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert {n for n, p in policy.named_parameters() if p.requires_grad and p.grad is None} == set()
    assert ("backbone.unet.conv_out.weight" in trained) == aux
    assert any(n.startswith("backbone.unet.up_blocks.1.") for n in trained) == aux   # after the only tap
    groups = {g["name"]: g for g in policy.param_groups(1e-6, 1e-4)}
    added = {id(p) for p in groups["backbone_added"]["params"]}
    assert added == {id(policy.backbone.keypoint), id(policy.backbone.frame_logits)}
    assert groups["backbone_added"]["lr"] == 1e-4 and groups["backbone"]["lr"] == 1e-6
    assert not added & {id(p) for p in groups["backbone"]["params"]}


def test_autoencoder_stage_trains_only_the_vae_and_sets_unit_variance_latents():
    torch.manual_seed(0)
    bb = SvdBackbone(tiny(), (32, 32)).train()
    bb.prepare_stage("autoencoder", uses_aux=False)
    assert {n.split(".")[0] for n, p in bb.named_parameters() if p.requires_grad} == {"vae"}
    images = torch.nn.functional.interpolate(torch.rand(4, 3, 4, 4), size=(32, 32), mode="bilinear")  # smooth
    opt = torch.optim.Adam([p for p in bb.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(60):
        loss = bb.pretrain_loss("autoencoder", {"image": images})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    std = bb._latents(images).std().item()      # scaled latents, as the UNet sees them
    assert 0.8 < std < 1.25, std                 # was 0.04 with the VAE's 0.18215 on a random VAE
