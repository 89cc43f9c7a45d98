import dataclasses

import pytest
import torch

from video_para.models.heads.global_mlp import GlobalMLPHead, GlobalMLPHeadConfig
from video_para.models.heads.motion_tracks import MotionTracksHead, MotionTracksHeadConfig
from video_para.models.backbones.base import keypoint_cells
from video_para.models.heads.para import ParaHead, ParaHeadConfig, cell_centres
from video_para.models.heads.para_reference import naive_loss
from video_para.models.stats import Stats

STATS = Stats(0.0, 0.3, 0.0, 1.0, [0.1, -0.2, 0.9], [0.2, 0.3, 0.1], 0.5, 0.4)


def make_batch(B, N, H, W, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"target_pixels": torch.rand(B, N, 2, generator=g) * torch.tensor([W, H]),
            "target_height": torch.rand(B, N, generator=g) * 0.3,
            "target_gripper": torch.rand(B, N, generator=g),
            "target_xyz": torch.randn(B, N, 3, generator=g),
            "start_pixel": torch.rand(B, 2, generator=g) * torch.tensor([W, H])}


@pytest.mark.parametrize("layers,feat,img,out", [(0, (7, 5), (40, 24), (0, 0)), (1, (6, 6), (48, 48), (24, 24)),
                                                 (2, (4, 8), (32, 64), (32, 64))])
def test_para_loss_equals_naive_volume(layers, feat, img, out):
    torch.manual_seed(0)
    cfg = ParaHeadConfig(hidden_channels=16, num_conv_layers=layers, n_height_bins=8, n_gripper_bins=6,
                         output_height=out[0], output_width=out[1], height_weight=0.7, gripper_weight=1.3)
    head = ParaHead(cfg, 10, 3, img, STATS).double()
    feats = torch.randn(2, 10, *feat, dtype=torch.float64)
    batch = make_batch(2, 3, *img)
    fast, ref = head.loss(head(feats), batch), naive_loss(head, feats, batch)
    for k in ref:
        assert abs(fast[k].item() - ref[k].item()) <= 1e-5, k
    # gradients agree too
    g_fast = torch.autograd.grad(fast["loss"], list(head.parameters()))
    g_ref = torch.autograd.grad(naive_loss(head, feats, batch)["loss"], list(head.parameters()))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)  # upsample weights are float32-exact


@pytest.mark.parametrize("height_at,gripper_at", [("current", "current"), ("target", "current"), ("current", "target")])
def test_para_loss_read_at_the_current_pixel_equals_naive_volume(height_at, gripper_at):
    torch.manual_seed(2)
    cfg = ParaHeadConfig(hidden_channels=16, n_height_bins=8, n_gripper_bins=6, output_height=24, output_width=24,
                         height_at=height_at, gripper_at=gripper_at)
    head = ParaHead(cfg, 10, 3, (48, 48), STATS).double()
    feats, batch = torch.randn(2, 10, 6, 6, dtype=torch.float64), make_batch(2, 3, 48, 48)
    fast, ref = head.loss(head(feats), batch), naive_loss(head, feats, batch)
    for k in ref:
        assert abs(fast[k].item() - ref[k].item()) <= 1e-5, k
    # the read-out matters: the same weights read at the targets give other losses for the moved terms
    at_target = ParaHead(ParaHeadConfig(**{**vars(cfg), "height_at": "target", "gripper_at": "target"}), 10, 3,
                         (48, 48), STATS).double()
    at_target.load_state_dict(head.state_dict())
    other = at_target.loss(at_target(feats), batch)
    for term, at in (("height", height_at), ("gripper", gripper_at)):
        assert (abs(other[term].item() - fast[term].item()) > 1e-3) == (at == "current"), term
    with pytest.raises(ValueError, match="start_pixel"):
        head.loss(head(feats), {k: v for k, v in batch.items() if k != "start_pixel"})


@pytest.mark.parametrize("gripper_at", ["target", "current"])
def test_para_decode_equals_brute_force_argmax(gripper_at):
    torch.manual_seed(1)
    cfg = ParaHeadConfig(hidden_channels=8, num_conv_layers=1, n_height_bins=5, n_gripper_bins=4,
                         output_height=20, output_width=30, subpixel="none", gripper_at=gripper_at)
    head = ParaHead(cfg, 6, 4, (40, 60), STATS)
    out = head(torch.randn(3, 6, 5, 7))
    start = torch.tensor([[3.2, 5.9], [59.0, 39.5], [30.0, 20.0]])
    dec = head.decode(out, start)
    up = lambda t: torch.nn.functional.interpolate(t, size=(20, 30), mode="bilinear", align_corners=False)  # noqa
    heat = up(out["heatmap"])
    vol_h = up(head.height(out["features"])).view(3, 4, 5, 20, 30)
    vol_g = up(head.gripper(out["features"])).view(3, 4, 4, 20, 30)
    for b in range(3):
        for n in range(4):
            # the decoded cell holds the brute-force maximum (exact ties, e.g. the clamped border
            # columns, may resolve to either cell)
            c, r = (dec.pixels[b, n] / 2 - 0.5).long().tolist()
            assert heat[b, n, r, c].item() == pytest.approx(heat[b, n].max().item(), abs=1e-6)
            assert dec.heights[b, n].item() == pytest.approx(head.height_bins.decode(vol_h[b, n, :, r, c].argmax().item()))
            if gripper_at == "current":      # the output cell holding the current EE pixel (pixel / 2)
                c, r = (start[b] / 2).floor().long().tolist()
            assert dec.gripper[b, n].item() == pytest.approx(head.gripper_bins.decode(vol_g[b, n, :, r, c].argmax().item()))
    assert torch.allclose(dec.heatmaps.sum((-1, -2)), torch.ones(3, 4))


def test_para_rejects_targets_outside_image():
    head = ParaHead(ParaHeadConfig(hidden_channels=8), 4, 2, (16, 16), STATS)
    batch = make_batch(1, 2, 16, 16)
    batch["target_pixels"][0, 1] = torch.tensor([16.0, 3.0])
    with pytest.raises(ValueError, match="outside"):
        head.loss(head(torch.randn(1, 4, 4, 4)), batch)


@pytest.mark.parametrize("make", [
    lambda: ParaHead(ParaHeadConfig(hidden_channels=8, num_conv_layers=2), 5, 3, (16, 16), STATS),
    lambda: GlobalMLPHead(GlobalMLPHeadConfig(hidden_dim=16), 5, 3, (16, 16), STATS),
    lambda: MotionTracksHead(MotionTracksHeadConfig(hidden_channels=8, hidden_dim=16), 5, 3, (16, 16), STATS)])
def test_gradients_reach_every_head_parameter(make):
    torch.manual_seed(0)
    head = make()
    head.loss(head(torch.randn(2, 5, 4, 4)), make_batch(2, 3, 16, 16))["loss"].backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_global_mlp_normalises_with_dataset_stats():
    head = GlobalMLPHead(GlobalMLPHeadConfig(hidden_dim=8, loss="mse"), 4, 2, (8, 8), STATS)
    batch = make_batch(1, 2, 8, 8)
    target = torch.cat([batch["target_xyz"], batch["target_gripper"][..., None]], -1)
    out = {"action": (target - head.mean) / head.std}           # a perfect normalised prediction
    assert head.loss(out, batch)["loss"].item() == pytest.approx(0.0, abs=1e-12)
    dec = head.decode(out)
    torch.testing.assert_close(dec.xyz, batch["target_xyz"])
    torch.testing.assert_close(dec.gripper, batch["target_gripper"])
    with pytest.raises(ValueError, match="l1"):
        GlobalMLPHead(GlobalMLPHeadConfig(loss="huber"), 4, 2, (8, 8), STATS)


@pytest.mark.parametrize("shape", [(28, 28, 448, 448), (5, 7, 20, 30), (7, 5, 40, 24), (16, 16, 32, 32),
                                   (1, 3, 8, 9), (4, 4, 4, 4), (20, 36, 320, 576)])
@pytest.mark.parametrize("kind", ["random", "flat", "tied_border"])
def test_upsampled_argmax_matches_full_upsampling(shape, kind):
    from video_para.models.heads.upsampled_argmax import upsampled_argmax
    h, w, Ho, Wo = shape
    torch.manual_seed(h * w)
    L = torch.randn(2, 12, h, w) * (0.01 if kind == "flat" else 1.0)
    if kind == "tied_border":
        L[..., 0, :] = 5.0        # a band of exactly equal cells along the top border
    U = torch.nn.functional.interpolate(L, size=(Ho, Wo), mode="bilinear", align_corners=False).flatten(2)
    r, c = upsampled_argmax(L, (Ho, Wo))
    got = U.gather(2, (r * Wo + c)[..., None])[..., 0]
    # the chosen cell holds the maximum (up to float rounding of the interpolation weights) ...
    torch.testing.assert_close(got, U.max(-1).values, atol=1e-6, rtol=1e-6)
    # ... and is the very same cell whenever the maximum is not a (near-)tie
    top2 = U.topk(2, -1).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-5
    assert torch.equal((r * Wo + c)[clear], U.argmax(-1)[clear])


@pytest.mark.parametrize("mode,tol", [("quadratic", 1e-3), ("softargmax", 0.05)])
def test_subpixel_decoding_recovers_a_known_peak(mode, tol):
    # 64 Gaussian peaks (sigma 2 px, about a trained heatmap's sharpness) at random sub-pixel positions
    # of a 128x128 image, logits on the 32x32 feature grid (stride 4): the argmax cell is ~1 px off
    torch.manual_seed(0)
    H = W = 128
    true = torch.rand(4, 16, 2) * 112 + 8
    centres = (torch.arange(32) + 0.5) * 4
    d2 = (centres[None, None, None, :] - true[..., 0, None, None]) ** 2 \
        + (centres[None, None, :, None] - true[..., 1, None, None]) ** 2
    out = {"heatmap": -d2 / (2 * 2.0 ** 2), "features": torch.randn(4, 3, 32, 32)}
    err = {}
    for m in ("none", mode):
        head = ParaHead(ParaHeadConfig(num_conv_layers=0, n_height_bins=4, n_gripper_bins=4, subpixel=m), 3, 16, (H, W), STATS)
        err[m] = (head.decode(out, heatmaps=False).pixels - true).norm(dim=-1)
    assert 0.7 < err["none"].mean() < 1.2 and err["none"].max() > 1.5
    assert err[mode].max() < tol
    with pytest.raises(ValueError, match="subpixel"):
        ParaHead(ParaHeadConfig(subpixel="parabola"), 3, 16, (H, W), STATS)


@pytest.mark.parametrize("mode", ["none", "quadratic", "softargmax"])
def test_reach_margin_keeps_each_peak_within_the_training_reach_of_the_ee(mode):
    # every step's map: a strong peak across the image (clutter) and a weaker one 6 px from the EE
    H = W = 64
    start = torch.tensor([[16.0, 20.0], [48.0, 40.0]])
    near, far = start + torch.tensor([6.0, 0.0]), torch.tensor([[56.0, 56.0], [8.0, 8.0]])
    centres = (torch.arange(16) + 0.5) * 4
    def bump(p, amp):
        d2 = (centres[None, :] - p[:, 0, None, None]) ** 2 + (centres[:, None] - p[:, 1, None, None]) ** 2
        return amp * torch.exp(-d2 / (2 * 3.0 ** 2))
    heat = (bump(near, 5.0) + bump(far, 9.0))[:, None].expand(-1, 3, -1, -1)
    out = {"heatmap": heat, "features": torch.randn(2, 3, 16, 16)}
    stats = dataclasses.replace(STATS, reach_px=[4.0, 8.0, 80.0])
    decoded = {}
    for margin in (0.0, 1.0):
        cfg = ParaHeadConfig(num_conv_layers=0, n_height_bins=4, n_gripper_bins=4, subpixel=mode, reach_margin=margin)
        decoded[margin] = ParaHead(cfg, 3, 3, (H, W), stats).decode(out, start, heatmaps=False).pixels
    assert ((decoded[0.0] - far[:, None]).norm(dim=-1) < 3).all()                 # off: the strongest peak
    d = (decoded[1.0] - start[:, None]).norm(dim=-1)
    assert (d[:, :2] < torch.tensor([4.0, 8.0]) + 4 + 1e-4).all()                # reach + one node (stride 4)
    assert ((decoded[1.0][:, 1] - near).norm(dim=-1) < 3).all()                   # the near peak, not the border
    assert ((decoded[1.0][:, 2] - far).norm(dim=-1) < 3).all()                   # within 80 px: far is allowed
    with pytest.raises(ValueError, match="reach_px"):
        ParaHead(ParaHeadConfig(reach_margin=1.0), 3, 3, (H, W), STATS)       # statistics without the reach
    with pytest.raises(ValueError, match="start_pixel"):
        ParaHead(cfg, 3, 3, (H, W), stats).decode(out)


def test_motion_tracks_regress_actions_from_the_track_alone():
    torch.manual_seed(0)
    head = MotionTracksHead(MotionTracksHeadConfig(num_conv_layers=0, hidden_dim=16), 4, 2, (32, 48), STATS)
    with torch.no_grad():                         # step n's heatmap = 40 x feature channel n: a sharp peak
        head.heatmap.weight.zero_()
        head.heatmap.bias.zero_()
        head.heatmap.weight[0, 0] = head.heatmap.weight[1, 1] = 40.0
    feats = torch.randn(2, 4, 8, 12) * 0.01
    feats[:, 0, 2, 5] = feats[:, 1, 6, 0] = 1.0   # stride 4: cell centres (22, 10) and (2, 26) px
    other = feats.clone()
    other[:, 2:] = torch.randn(2, 2, 8, 12)       # channels no heatmap reads
    dec, dec_other = head.decode(head(feats)), head.decode(head(other))
    torch.testing.assert_close(dec.pixels, torch.tensor([[22.0, 10.0], [2.0, 26.0]]).expand(2, 2, 2), atol=1e-3, rtol=0)
    torch.testing.assert_close(dec_other.xyz, dec.xyz)
    torch.testing.assert_close(dec_other.gripper, dec.gripper)
    # the regression loss does not move the track: only the track term reaches the heatmap logits
    batch = make_batch(2, 2, 32, 48)
    terms = head.loss(head(feats), batch)
    grad = torch.autograd.grad(terms["xyz"] + terms["gripper"], head.heatmap.weight, allow_unused=True)[0]
    assert grad is None or grad.abs().max() == 0
    assert terms["loss"].item() == pytest.approx((terms["xyz"] + terms["gripper"] + terms["track"]).item())


def test_motion_tracks_fit_a_fixed_batch():
    torch.manual_seed(0)
    head = MotionTracksHead(MotionTracksHeadConfig(hidden_channels=16, hidden_dim=32), 8, 3, (32, 32), STATS)
    feats, batch = torch.randn(4, 8, 8, 8), make_batch(4, 3, 32, 32)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    errors = lambda dec: ((dec.pixels - batch["target_pixels"]).norm(dim=-1).mean().item(),  # noqa: E731
                          (dec.xyz - batch["target_xyz"]).norm(dim=-1).mean().item())
    (px0, xyz0), losses = errors(head.decode(head(feats))), []
    for _ in range(120):
        terms = head.loss(head(feats), batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(terms["loss"].item())
    px, xyz = errors(head.decode(head(feats)))
    assert losses[-1] < 0.1 * losses[0]                      # measured 6.2 -> 0.22
    assert px0 > 8 and px < 2                                 # track error 10.9 -> 1.3 px
    assert xyz0 > 1 and xyz < 0.15                            # 3D error 1.65 -> 0.04 (target xyz ~ N(0, 1))


def test_pixel_to_cell_rules_are_shared_by_targets_and_keypoints():
    """Both map a pixel to the cell holding it; a pixel outside the image (or NaN) is an error naming
    how many and the image size, and one just inside the last cell stays in it."""
    last = torch.nextafter(torch.tensor([[[7.0, 7.0]]]), torch.tensor(0.0))   # * 4/7 rounds up to 4.0
    idx, _ = cell_centres(last, (7, 7), (4, 4))
    assert idx.item() == 15
    assert [c.item() for c in keypoint_cells(last[0], (7, 7), (4, 4))] == [3, 3]
    with pytest.raises(ValueError, match=r"2 target pixel\(s\) outside the 16x8 image .*data.out_of_image"):
        cell_centres(torch.tensor([[[-0.1, 1.0], [float("nan"), 1.0], [3.0, 3.0]]]), (8, 16), (8, 16))
    with pytest.raises(ValueError, match=r"1 start keypoint\(s\) outside the 16x8 image .*must be visible"):
        keypoint_cells(torch.tensor([[3.0, 8.0]]), (8, 16), (2, 4))


def test_one_switch_gripper_removes_flicker_and_keeps_one_real_switch():
    from video_para.models.gripper import filter_gripper
    g = torch.tensor([[0.9, 0.9, 0.9, 0.9, 0.1, 0.2, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9],    # flicker mid-carry
                      [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.8, 0.9, 0.9],    # a grasp: kept as is
                      [0.9, 0.9, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.6, 0.1, 0.1]])   # a release with two blips
    out = filter_gripper(g, "one_switch")
    closed = (out >= 0.5).int().tolist()
    assert closed[0] == [1] * 12 and closed[1] == [0] * 7 + [1] * 5 and closed[2] == [1] * 5 + [0] * 7
    assert out[0, 4].item() == pytest.approx(0.89) and out[0, 6].item() == pytest.approx(0.8)   # agreeing steps keep their value
    assert torch.equal(out[1], g[1]) and torch.equal(filter_gripper(g, "none"), g)
    median = filter_gripper(g, "median", 5)                      # blips of 1-2 steps go, the real switches stay
    assert (median >= 0.5).int().tolist() == [[1] * 12, [0] * 7 + [1] * 5, [1] * 4 + [0] * 8]
    assert median[0, 4].item() == pytest.approx(0.8)
    with pytest.raises(ValueError, match="gripper_filter_width"):
        filter_gripper(g, "median", 4)
    with pytest.raises(ValueError, match="gripper_filter"):
        filter_gripper(g, "hysteresis")


def test_snap_moves_each_gripper_switch_to_the_lowest_step_near_it():
    from video_para.models.gripper import check_snap, snap_to_lowest
    # the chunks of a validation rollout (z above the rim, cm): descend, pause, "close" on the first lifting step
    z = torch.tensor([[4.9, -0.9, -1.5, -1.5, 1.4, 4.3, 4.3, 7.3, 10.7, 10.7, 10.7, 7.8],
                      [-1.5, -1.5, 4.3, 4.3, 10.7, 10.7, 10.7, 10.7, 10.7, 10.7, 7.3, 7.3],
                      [9.0, 6.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0],
                      [5.0, 1.0, 1.0, 6.0, 6.0, 6.0, 6.0, 6.0, 4.0, 2.0, 6.0, 6.0]]) / 100
    g = torch.tensor([[0.0] * 4 + [1.0] * 8,
                      [0.0] * 3 + [1.0] * 9,           # the lowest steps are 2-3 back: window 2 reaches step 1
                      [1.0] * 6 + [0.0] * 6,           # a release at the flat bottom: already lowest, stays
                      [0.0] * 4 + [0.9] * 4 + [0.1] * 4])   # two switches; the second moves later, the first back
    out = snap_to_lowest(g, z, window=2)
    closed = (out >= 0.5).int().tolist()
    assert closed[0] == [0] * 3 + [1] * 9                # the nearest of the two lowest steps
    assert closed[1] == [0] + [1] * 11
    assert torch.equal(out[2], g[2])
    assert closed[3] == [0] * 2 + [1] * 7 + [0] * 3 and out[3, 2].item() == pytest.approx(0.9)
    assert closed[0] == (snap_to_lowest(g, z, window=1) >= 0.5).int().tolist()[0]
    assert torch.equal(snap_to_lowest(g[1:2], z[1:2], window=1), g[1:2])    # the bottom is out of reach
    with pytest.raises(ValueError, match="gripper_snap_window"):
        check_snap("lowest", 0)
    with pytest.raises(ValueError, match="gripper_snap"):
        check_snap("earliest", 2)
