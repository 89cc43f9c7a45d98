import numpy as np

from video_para.eval.report import plot_viewpoints, theta_breakdown
from video_para.eval.rollout import EpisodeResult, RolloutResult
from video_para.scenes import load_protocol, specs


def test_per_theta_breakdown_and_viewpoint_plot(tmp_path):
    p = load_protocol("viewpoint", ["rows=2", "cols=2"])
    test = specs(p, "test")
    # success only at the smallest test theta: the breakdown must say exactly that
    small = min(s["theta"] for s in test)
    res = RolloutResult([EpisodeResult(s, s["theta"] == small, 10) for s in test])
    per = theta_breakdown(res)
    assert list(per) == sorted(per) and len(per) == 5               # 8 thetas, 3 of them (<= 7.2) train
    assert per[small] == (32, 32) and all(s == 0 and n == 32 for t, (s, n) in per.items() if t != small)
    out = plot_viewpoints({"PARA": res}, specs(p, "train"), tmp_path / "viewpoints.png")
    assert out.stat().st_size > 5000
    assert np.isclose(sum(n for _, n in per.values()), len(test))


def test_eval_cli_writes_table_plot_and_videos(tmp_path, capsys, monkeypatch):
    import torch

    from video_para.eval import cli
    from video_para.eval.rollout import rollout
    from video_para.models import Policy, PolicyConfig, Stats
    from video_para.models.backbones.tiny import TinyBackboneConfig
    from video_para.models.heads.para import ParaHeadConfig
    torch.manual_seed(0)
    cfg = PolicyConfig(backbone=TinyBackboneConfig(channels=8, n_down=1, n_blocks=1),
                       head=ParaHeadConfig(hidden_channels=16, n_height_bins=8, n_gripper_bins=4),
                       n_window=3, image_height=32, image_width=32)
    Policy(cfg, Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5)).save_pretrained(tmp_path / "p")

    def known_outcomes(*args, **kwargs):
        """The real rollout (videos, overlays), its outcomes set to known ones: every row is known by hand."""
        res = rollout(*args, **kwargs)
        for e, (success, grasps) in zip(res.episodes, [(True, 1), (False, 0), (False, 2)], strict=True):
            e.success, e.grasps = success, grasps
        return res
    monkeypatch.setattr(cli, "rollout", known_outcomes)
    cli.main(["--policy", str(tmp_path / "p"), "--protocol", "left_right", "--protocol-override", "rows=2",
              "--protocol-override", "cols=4", "--episodes", "3", "--max-steps", "6", "--videos", "1",
              "--out", str(tmp_path / "out"), "env.image_height=32", "env.image_width=32"])
    out = capsys.readouterr().out
    md = """\
| protocol | method | success | paper |
|---|---|---|---|
| left_right/test | para | 33% (1/3) | 54% |

Failures by what the rollout reached (runs that recorded grasps):

| protocol | method | success | failed, never grasped | failed after grasping | grasps per episode |
|---|---|---|---|---|---|
| left_right/test | para | 1/3 | 1/3 | 1/3 | 1.0 |
"""
    assert (tmp_path / "out" / "results.md").read_text() == md and md in out
    assert (tmp_path / "out" / "results.csv").read_text().splitlines() == [
        "protocol,method,successes,episodes,success_rate,seed_rates,paper", "left_right/test,para,1,3,0.3333333333333333,,54"]
    for name in ("results.md", "results.csv", "success_vs_distance.png", "videos/episode_000.mp4"):
        assert (tmp_path / "out" / name).stat().st_size > 0 and name in out
    assert not (tmp_path / "out" / "videos" / "episode_001.mp4").exists()


def test_eval_cli_takes_env_protocol_and_replanning_from_the_run(tmp_path, capsys):
    """A policy saved by a run is evaluated the way the run evaluates it, unless flags say otherwise."""
    import torch

    from video_para.config import load_config, to_yaml
    from video_para.eval.cli import main
    from video_para.experiment import ExperimentConfig
    from video_para.models import Policy, Stats
    torch.manual_seed(0)
    size = [f"{part}.image_{side}=32" for part in ("policy", "env") for side in ("height", "width")]
    run = load_config(ExperimentConfig, ["experiment=tiny_para", "data.protocol_overrides=[rows=2,cols=6]", "seed=3",
                                         "eval.replan_every=5", "eval.max_steps=7", *size])
    Policy(run.policy, Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5)).save_pretrained(tmp_path / "policy")
    (tmp_path / "config.yaml").write_text(to_yaml(run))
    main(["--policy", str(tmp_path / "policy"), "--videos", "0", "--out", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert "left_right/test (tabletop env): 6 episodes, re-plan every 5 steps, at most 7 steps, seed 3" in out
    main(["--policy", str(tmp_path / "policy"), "--videos", "0", "--out", str(tmp_path / "b"), "--replan-every", "2",
          "--protocol-override", "cols=4", "--seed", "0"])
    assert "4 episodes, re-plan every 2 steps, at most 7 steps, seed 0" in capsys.readouterr().out
    main(["--policy", str(tmp_path / "policy"), "--videos", "0", "--out", str(tmp_path / "c"), "--split", "val",
          "--protocol-override", "holdout=boundary", "--gripper-filter", "one_switch"])
    assert "left_right/val (tabletop env): 2 episodes, re-plan every 5 steps, at most 7 steps, seed 3, " \
           "gripper filter one_switch" in capsys.readouterr().out


def test_loss_curves_skip_a_damaged_log_and_name_it(tmp_path, capsys):
    from video_para.eval.report import plot_loss_curves
    good, zeros = tmp_path / "good.csv", tmp_path / "zeros.csv"
    good.write_text("step,loss\n1,2.0\n2,1.5\n")
    zeros.write_bytes(b"\0" * 64)                     # what a crash before the write reached the disk leaves
    path = plot_loss_curves({"PARA": good, "MLP": zeros, "SVD": tmp_path / "missing.csv"}, tmp_path / "loss.png")
    assert path.stat().st_size > 0
    out = capsys.readouterr().out
    assert f"no loss curve for MLP: {zeros}" in out and "no loss curve for SVD" in out and "PARA" not in out


def test_eval_cli_on_a_policy_copied_out_of_its_run_uses_the_run_it_carries(tmp_path, capsys):
    """No config.yaml beside it: env (32x32 images, not the default 128), protocol, re-planning, episode length
    and seed come from the policy's config.json `run`; the report is written beside the policy."""
    import torch

    from video_para.config import load_config, to_dict
    from video_para.eval.cli import main
    from video_para.experiment import ExperimentConfig
    from video_para.models import Policy, Stats
    torch.manual_seed(0)
    size = [f"{part}.image_{side}=32" for part in ("policy", "env") for side in ("height", "width")]
    run = load_config(ExperimentConfig, ["experiment=tiny_para", "data.protocol_overrides=[rows=2,cols=4]", "seed=3",
                                         "eval.replan_every=5", "eval.max_steps=3", *size])
    Policy(run.policy, Stats(0.0, 0.3, 0.0, 1.0, [0.0, 0.0, 0.1], [0.2, 0.2, 0.1], 0.5, 0.5),
           run=to_dict(run)).save_pretrained(tmp_path / "copied" / "policy")
    main(["--policy", str(tmp_path / "copied" / "policy"), "--videos", "0", "--episodes", "1"])
    out = capsys.readouterr().out
    assert "policy/config.json (flags override them)" in out
    assert "left_right/test (tabletop env): 1 episodes, re-plan every 5 steps, at most 3 steps, seed 3" in out
    assert (tmp_path / "copied" / "eval" / "left_right_test" / "results.md").exists()


def test_init_state_scenes_get_no_distance_plot(tmp_path):
    """LIBERO init-state scenes have no grid cell: no success-vs-distance plot (and no KeyError)."""
    from video_para.eval.report import plot_protocol
    p = load_protocol("libero_init_states")
    res = RolloutResult([EpisodeResult(s, True, 10) for s in specs(p, "test")])
    assert plot_protocol({"PARA": res}, p, tmp_path) is None and not list(tmp_path.iterdir())
