import numpy as np

from video_para.eval.protocols import load_protocol, specs
from video_para.eval.report import plot_viewpoints, theta_breakdown
from video_para.eval.rollout import EpisodeResult, RolloutResult


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
