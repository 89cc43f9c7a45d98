"""`make gpu-check`'s script at reduced width on CPU: the same three training steps, measured."""
import torch

from video_para.bench import gpu
from video_para.models.backbones.svd_components import img2vid_components

CPU = ["--device", "cpu", "--width", "0.1", "--size", "64x64", "--frames", "3", "--dino-size", "56",
       "--dino-batch", "2", "--dino-dim", "32", "--steps", "1"]


def test_gpu_check_runs_each_step_at_reduced_width_on_cpu(capsys):
    torch.set_num_threads(1)
    results = gpu.main(CPU)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["check"] for r in results] == ["svd_stage1", "svd_joint", "dino_para"] and len(lines) == 3
    unet = sum(p.numel() for p in img2vid_components(0.1).unet.parameters())
    stage1, joint, dino = results
    assert abs(stage1["trained_params_m"] - unet / 1e6) <= 0.05   # the UNet (+ keypoint), not VAE or CLIP
    assert joint["trained_params_m"] > stage1["trained_params_m"]  # + the PARA head
    assert stage1["attention"] == joint["attention"] == "AttnProcessor2_0"   # torch SDPA on CPU
    assert dino["attention"] == "transformers sdpa" and dino["batch"] == 2 and joint["frames"] == 3
    assert all(r["seconds_per_step"] > 0 and r["loss"] == r["loss"] for r in results)
