import csv
import os

import pytest
import torch

from video_para.config import load_config
from video_para.experiment import ExperimentConfig
from video_para.models import Policy
from video_para.training.cli import finetune, main
from video_para.training.trainer import train, warmup_cosine

SMALL = ["experiment=tiny_para", "env.image_height=32", "env.image_width=32", "policy.image_height=32", "policy.image_width=32",
         "data.protocol_overrides=[rows=2,cols=2]", "data.shift_px=2", "train.batch_size=8", "train.log_every=5",
         "policy.head.hidden_channels=16", "policy.backbone.channels=16"]


def test_finetune_trains_logs_and_exports_a_loadable_policy(tmp_path):
    cfg = load_config(ExperimentConfig, [*SMALL, "train.steps=30", f"output_dir={tmp_path}"])
    policy = finetune(cfg, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20, 25, 30]
    assert {"heatmap", "height", "gripper", "loss", "lr_backbone", "lr_head"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    loaded = Policy.from_pretrained(tmp_path / "policy")
    for a, b in zip(policy.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a.cpu(), b)
    assert (tmp_path / "config.yaml").exists() and "git_commit" in (tmp_path / "run.json").read_text()


def test_nan_loss_stops_naming_step_and_term(tmp_path):
    cfg = load_config(ExperimentConfig, [*SMALL, "train.steps=5", f"output_dir={tmp_path}"])
    from video_para.data.sources import build_dataset
    ds = build_dataset(cfg.data, cfg.env, cfg.policy.n_window, progress=False)
    policy = Policy(cfg.policy, ds.stats())
    with torch.no_grad():
        policy.head.height.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="step 0: loss term 'height'"):
        train(policy, ds, cfg, progress=False)
    assert not (tmp_path / "policy").exists()


def test_warmup_cosine_schedule():
    f = warmup_cosine(10, 110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)


def test_svd_two_stage_pretrain_then_finetune_from_it(tmp_path):
    tiny = ["data.protocol_overrides=[rows=2,cols=2]", "train.batch_size=2", "train.log_every=1", "train.steps=2"]
    stage0 = load_config(ExperimentConfig, ["experiment=tiny_svd_autoencoder", *tiny, f"output_dir={tmp_path / 's0'}"])
    fitted = finetune(stage0, progress=False)
    assert "autoencoder" in open(tmp_path / "s0" / "metrics.csv").readline()
    stage1 = load_config(ExperimentConfig, ["experiment=tiny_svd_pretrain", *tiny, f"output_dir={tmp_path / 's1'}",
                                            f"train.init_from={tmp_path / 's0' / 'policy'}"])
    pre = finetune(stage1, progress=False)
    assert "diffusion" in open(tmp_path / "s1" / "metrics.csv").readline()
    for k, v in fitted.backbone.vae.state_dict().items():            # stage 1 keeps the stage-0 VAE ...
        assert torch.equal(v, pre.backbone.vae.state_dict()[k]), k
    assert pre.backbone.latent_scale == fitted.backbone.latent_scale != 0.18215   # ... and its latent scale
    stage2 = load_config(ExperimentConfig, ["experiment=tiny_svd_two_stage", *tiny, f"output_dir={tmp_path / 's2'}",
                                            f"train.init_from={tmp_path / 's1' / 'policy'}", "train.lr_backbone=0"])
    post = finetune(stage2, progress=False)
    header = open(tmp_path / "s2" / "metrics.csv").readline()
    assert "aux" in header and "heatmap" in header                  # head loss + lambda * diffusion loss
    for k, v in pre.backbone.state_dict().items():                  # lr 0: the stage-1 UNet is kept exactly,
        assert torch.equal(v, post.backbone.state_dict()[k]) == (k != "keypoint"), k   # the new keypoint
                                                                    # embedding trains at the head's rate
    # the frozen ablation starts from the same stage-1 weights (backbone.mode is how, not what, to train)
    frozen = finetune(load_config(ExperimentConfig, ["experiment=tiny_svd_frozen", *tiny, f"output_dir={tmp_path / 'f'}",
                                                     f"train.init_from={tmp_path / 's1' / 'policy'}"]), progress=False)
    assert all(torch.equal(v, frozen.backbone.state_dict()[k]) for k, v in pre.backbone.state_dict().items())
    with pytest.raises(ValueError, match=r"in \['n_frames'\]"):
        finetune(load_config(ExperimentConfig, ["experiment=tiny_svd_frozen", *tiny, "policy.backbone.n_frames=2",
                                                "data.clip_frames=2", f"output_dir={tmp_path / 'g'}", f"train.init_from={tmp_path / 's1' / 'policy'}"]),
                 progress=False)
    with pytest.raises(ValueError, match="needs policy.backbone.type=svd"):
        load_config(ExperimentConfig, ["experiment=tiny_para", "train.stage=diffusion"])


def _params(policy):
    return {k: v.clone() for k, v in policy.state_dict().items()}


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tmp_path, capsys):
    # ~9 batches per epoch: 10 steps cross an epoch; the exported policy is the EMA, so it must resume too
    args = [*SMALL, "train.save_every=4", "train.ema_decay=0.9", "train.steps=10"]
    full = finetune(load_config(ExperimentConfig, [*args, f"output_dir={tmp_path / 'full'}"]), progress=False)
    part = tmp_path / "part"
    finetune(load_config(ExperimentConfig, [*args, f"output_dir={part}"]), progress=False)
    ckpts = part / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["0000004", "0000008", "0000010", "last"]   # the final step too
    files = {p.relative_to(ckpts / "0000004").as_posix() for p in (ckpts / "0000004").rglob("*") if p.is_file()}
    assert {f.rsplit(".", 1)[-1] for f in files} == {"safetensors", "json", "yaml"}          # no pickle to load
    assert "training_state/ema.safetensors" in files and "config.yaml" in files
    assert oct((part / "policy").stat().st_mode & 0o777) == oct(0o777 & ~_umask())
    # a run that died between steps 8 and 10 left `last` at 8, whose optimizer file is damaged: the
    # resume names it and continues from checkpoint 4 instead
    (ckpts / "last").write_text("0000008")
    (ckpts / "0000008" / "training_state" / "optimizer.safetensors").write_bytes(b"truncated")
    capsys.readouterr()
    resumed = finetune(load_config(ExperimentConfig, [*args, "train.resume=true", f"output_dir={part}"]),
                       progress=False)
    printed = capsys.readouterr().out
    assert "0000008/training_state/optimizer.safetensors" in printed and "[resume] from" in printed
    assert f"[resume] from {ckpts / '0000004'} at step 4" in printed
    a, b = _params(full), _params(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [int(r["step"]) for r in csv.DictReader(open(part / "metrics.csv"))]
    assert steps == [5, 10]            # the rows logged after checkpoint 4 by the "killed" run are dropped


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_cli_refuses_a_used_output_dir_and_a_changed_config_on_resume(tmp_path, capsys):
    args = [*SMALL, "train.steps=2", "train.save_every=2", f"output_dir={tmp_path}"]
    main(args)
    assert (tmp_path / "checkpoints" / "0000002" / "config.yaml").exists()
    with pytest.raises(SystemExit, match="holds another run .policy, metrics.csv, checkpoints.*train.resume=true"):
        main(args)
    with pytest.raises(SystemExit, match=r"in train.batch_size: 8 -> 4, train.lr_head: 0.001 -> 0.01\. .*"
                                         "train.resume_override=true"):
        main([*args, "train.resume=true", "train.batch_size=4", "train.lr_head=0.01"])
    main([*args, "train.resume=true", "train.batch_size=4", "train.resume_override=true", "train.log_every=1"])
    assert "[resume] train.resume_override: continuing" in capsys.readouterr().out


def test_ema_and_periodic_eval_leave_training_alone_and_ema_is_exported(tmp_path):
    base = [*SMALL, "train.steps=10"]
    plain = finetune(load_config(ExperimentConfig, [*base, f"output_dir={tmp_path / 'plain'}"]), progress=False)
    extra = ["train.ema_decay=0.9", "eval.every=5", "eval.every_episodes=2", "eval.max_steps=8"]
    ema = finetune(load_config(ExperimentConfig, [*base, *extra, f"output_dir={tmp_path / 'ema'}"]), progress=False)
    rows_p = list(csv.DictReader(open(tmp_path / "plain" / "metrics.csv")))
    rows_e = list(csv.DictReader(open(tmp_path / "ema" / "metrics.csv")))
    assert [r["loss"] for r in rows_p] == [r["loss"] for r in rows_e]     # same training, step for step
    assert "eval_success_rate" not in rows_p[0]
    assert [r["step"] for r in rows_e] == ["5", "10"]
    header = open(tmp_path / "ema" / "metrics.csv").readline().strip().split(",")
    assert header == [*rows_p[0], "eval_success_rate"]
    assert all(float(r["eval_success_rate"]) in (0.0, 0.5, 1.0) for r in rows_e)   # 2 episodes each
    exported = Policy.from_pretrained(tmp_path / "ema" / "policy").state_dict()
    for k, v in plain.state_dict().items():
        assert torch.equal(exported[k], ema.state_dict()[k].cpu())
        assert not torch.equal(v, exported[k]), f"{k}: the EMA export equals the raw weights"


def test_tensorboard_tracker_logs_what_the_csv_logs(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is in the dev extra; not installed here")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    cfg = load_config(ExperimentConfig, [*SMALL, "train.steps=4", "train.log_every=2",
                                         "train.log_with=[csv,tensorboard]", f"output_dir={tmp_path}"])
    finetune(cfg, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    events = EventAccumulator(str(tmp_path / "logs" / tmp_path.name)).Reload()     # logs/<run name>/
    loss = events.Scalars("loss")
    assert [e.step for e in loss] == [2, 4]
    assert [e.value for e in loss] == pytest.approx([float(r["loss"]) for r in rows], abs=1e-5)
    with pytest.raises(ValueError, match="log_with"):
        load_config(ExperimentConfig, [*SMALL, "train.log_with=[mlflow]"])
