import imageio.v2 as imageio
import numpy as np

from video_para.config import from_dict, to_dict
from video_para.envs import ENVS
from video_para.envs.expert import run_expert
from video_para.envs.tabletop import TabletopConfig
from video_para.eval.report import overlay, plot_success_vs_distance, success_table
from video_para.eval.rollout import rollout
from video_para.models.policy import ActionChunk
from video_para.scenes import ProtocolConfig, load_protocol, specs


class ReplayOracle:
    """Ground-truth targets: the expert's actions for the scene the env was reset to."""

    def __init__(self, env, n_window=12, replan_every=4):
        self.env, self.n_window, self.replan_every = env, n_window, replan_every

    def reset(self):
        self.plan = None

    def predict(self, image, camera, ee_pos, support_z):
        if self.plan is None:
            ep, ok = run_expert(ENVS.build(self.env.cfg), self.env.spec, seed=0)
            assert ok
            self.plan, self.t = ep.action, 0
        chunk = self.plan[self.t:self.t + self.n_window]
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.n_window - len(chunk), 0)])
        self.t += self.replan_every
        return ActionChunk(chunk, camera.project(chunk[:, :3]), None)


def test_oracle_rollout_succeeds_and_writes_videos(tmp_path):
    env = ENVS.build(TabletopConfig(image_height=64, image_width=64))
    specs_ = [{"bowl_xy": [0.0, 0.2]}, {"bowl_xy": [-0.15, -0.25]}]
    res = rollout(ReplayOracle(env), env, specs_, replan_every=4, max_steps=80, video_dir=tmp_path, n_videos=1)
    assert res.successes == 2 and res.rate == 1.0
    assert all(e.error < 0.05 for e in res.episodes)
    assert [e.grasps for e in res.episodes] == [1, 1]
    assert (tmp_path / "episode_000.mp4").stat().st_size > 1000 and not (tmp_path / "episode_001.mp4").exists()
    png = imageio.imread(res.episodes[0].overlay)
    assert png.shape == (192, 192, 3) and (png == [255, 255, 0]).all(-1).any()   # 3x upscaled, next-step dot


def test_failed_prediction_is_a_recorded_failure_not_a_crash():
    env = ENVS.build(TabletopConfig(image_height=32, image_width=32))

    class Broken:
        def predict(self, *a):
            raise ValueError("3 start keypoint(s) outside the image; the end effector must be visible")

    res = rollout(Broken(), env, [{"bowl_xy": [0.0, 0.0]}], max_steps=10)
    assert res.successes == 0 and "outside the image" in res.episodes[0].failure


def test_rollout_counts_grasps():
    """A plan that lets go right after closing and closes again at the rim grasps twice; one that never
    closes grasps nothing; an env that cannot tell records None."""
    env = ENVS.build(TabletopConfig(image_height=32, image_width=32))

    class Regrasp(ReplayOracle):
        def reset(self):
            ep, _ = run_expert(ENVS.build(self.env.cfg), self.env.spec, seed=0)
            close = int(np.argmax(ep.action[:, 3] >= 0.5))          # the step the expert closes at the rim
            release = ep.action[close] * [1, 1, 1, 0]                # open there, then close again
            self.plan = np.concatenate([ep.action[:close + 1], [release, ep.action[close]], ep.action[close + 1:]])
            self.t = 0

    class Hover:
        def predict(self, *a):
            return ActionChunk(np.tile([[-0.1, 0.0, 0.2, 0.0]], (12, 1)), None, None)

    class Untracked(type(env)):
        def holding(self):
            return None

    scene = [{"bowl_xy": [0.0, 0.2]}]
    regrasp = rollout(Regrasp(env), env, scene, max_steps=120).episodes[0]
    assert regrasp.success and regrasp.grasps == 2
    never = rollout(Hover(), env, scene, max_steps=8).episodes[0]
    assert never.grasps == 0 and not never.success
    assert rollout(Hover(), Untracked(env.cfg), scene, max_steps=4).episodes[0].grasps is None


def test_protocol_round_trip_and_splits():
    p = load_protocol("left_right", ["rows=4", "cols=6"])
    assert from_dict(ProtocolConfig, to_dict(p)) == p
    train, test = specs(p, "train"), specs(p, "test")
    assert len(train) == len(test) == 12
    assert min(s["bowl_xy"][1] for s in train) > max(s["bowl_xy"][1] for s in test)   # left = +y
    v = load_protocol("viewpoint", ["rows=2", "cols=2"])
    assert all(s["theta"] <= v.train_theta_max for s in specs(v, "train"))
    assert all(s["theta"] > v.train_theta_max for s in specs(v, "test"))
    c = load_protocol("corners32")
    assert len(specs(c, "train")) == 32 and len(specs(load_protocol("dense64"), "train")) == 64
    d = load_protocol("distractors", ["rows=2", "cols=2"])
    assert all(len(s["distractors"]) == 3 for s in specs(d, "test"))
    assert all("distractors" not in s for s in specs(d, "train"))            # clean training scenes
    cluttered = specs(load_protocol("distractors", ["rows=2", "cols=2", "train_distractors=2"]), "train")
    for s in cluttered:
        xy = np.array(s["distractors"])
        assert len(xy) == 2 and np.linalg.norm(xy - s["bowl_xy"], axis=1).min() > 0.1


def test_report_files(tmp_path):
    rows = [{"protocol": "left_right", "method": "PARA", "successes": 3, "episodes": 4, "paper": 54}]
    md, csv_path = success_table(rows, tmp_path)
    assert "75% (3/4)" in md.read_text() and "54%" in md.read_text()
    assert csv_path.read_text().splitlines()[1].startswith("left_right,PARA,3,4,0.75")
    img = overlay(np.zeros((8, 8, 3), np.uint8), np.array([[4.0, 4.0]]), np.ones((1, 8, 8)) / 64)
    assert img.shape == (24, 24, 3) and img[12, 12].tolist() == [255, 255, 0]


def test_progress_is_log_lines_when_not_on_a_terminal(capsys):
    """Under pytest stderr is not a terminal: plain lines every `every` items, with the postfix, no '\\r'."""
    from video_para.progress import progress
    bar = progress(range(4), desc="demo", every=2)
    for i in bar:
        bar.set_postfix(success=f"{i + 1}/{i + 1}")
    err = capsys.readouterr().err
    assert "\r" not in err and [line.split(" (")[0] for line in err.splitlines()] == ["[demo] 2/4", "[demo] 4/4"]
    assert err.splitlines()[1].endswith("success=4/4")
