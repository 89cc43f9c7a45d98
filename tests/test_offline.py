import pytest
import torch

from video_para.envs import ENVS
from video_para.envs.expert import run_expert
from video_para.envs.tabletop import TabletopConfig
from video_para.data.windows import WindowDataset
from video_para.eval.offline import format_metrics, offline_metrics
from video_para.models.heads import Decoded


class OffsetOracle:
    """Predicts the ground truth of one known window, displaced by known amounts."""

    def __init__(self, item, image_size):
        self.item, self.config = item, type("C", (), {"image_size": image_size})()

    def eval(self):
        pass

    def predict_batch(self, image, start_pixel, camera, support_z):
        B, it = len(image), self.item
        rep = lambda t: t[None].expand(B, *t.shape)  # noqa: E731
        return Decoded(gripper=1 - rep(it["target_gripper"]), pixels=rep(it["target_pixels"]) + torch.tensor([3.0, 4.0]),
                       heights=rep(it["target_height"]) + 0.02, xyz=rep(it["target_xyz"]) + torch.tensor([0.0, 0.0, 0.02]))


def test_offline_metrics_measure_known_displacements():
    env = ENVS.build(TabletopConfig(image_height=64, image_width=64))
    ep, ok = run_expert(env, {"bowl_xy": [0.0, 0.1]}, seed=0)
    item = WindowDataset([ep], n_window=12)[0]
    m = offline_metrics(OffsetOracle(item, (64, 64)), [item] * 5, batch_size=2)
    assert ok and m["pixel_error_px"] == pytest.approx(5.0, abs=1e-5)
    assert m["height_error_m"] == pytest.approx(0.02, abs=1e-6) and m["xyz_error_m"] == pytest.approx(0.02, abs=1e-6)
    assert m["gripper_agreement"] == 0.0
    assert "| PARA test | 5.000 |" in format_metrics({"PARA test": m})


class AboveHorizon(OffsetOracle):
    """Like OffsetOracle, but a window with a black image predicts a pixel that cannot be lifted."""

    def predict_batch(self, image, start_pixel, camera, support_z):
        if (image.flatten(1).amax(1) == 0).any():
            raise ValueError("3 pixel rays meet the plane z = support_z + height behind the camera")
        return super().predict_batch(image, start_pixel, camera, support_z)


def test_windows_that_cannot_be_decoded_fail_alone():
    env = ENVS.build(TabletopConfig(image_height=64, image_width=64))
    ep, _ = run_expert(env, {"bowl_xy": [0.0, 0.1]}, seed=0)
    item = WindowDataset([ep], n_window=12)[0]
    dark = {**item, "image": torch.zeros_like(item["image"])}
    m = offline_metrics(AboveHorizon(item, (64, 64)), [item, dark, item, item, dark], batch_size=4)
    assert m["failed_windows"] == pytest.approx(2 / 5)
    assert m["pixel_error_px"] == pytest.approx(5.0, abs=1e-5)     # the three decodable windows, each 5 px off
    assert m["xyz_error_m"] == pytest.approx(0.02, abs=1e-6)
