import pytest
import torch

from video_para.models.backbones.svd import SvdBackbone, SvdBackboneConfig, tap_channels
from video_para.models.backbones.svd_components import load_components, tiny_components

torch.set_num_threads(1)  # see test_backbones.py


def tiny(**kw):
    return SvdBackboneConfig(preset="tiny", n_frames=2, tap_blocks=[0, 1], feature_size=8, **kw)


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
                               torch.zeros(B, T, 4, h, w, **meta), torch.zeros(B, 1, 1024, **meta),
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
