import numpy as np

from video_para.data.generate import main as generate


def test_generate_cli_builds_demos_for_a_protocol_split(capsys):
    eps = generate(["protocol=left_right", "split=test", "limit=3", "protocol.rows=4", "protocol.cols=4",
                    "env.image_height=48", "env.image_width=64"])
    assert len(eps) == 3 and "3 demos" in capsys.readouterr().out
    assert all(e.cameras["front"].images.shape[1:] == (48, 64, 3) for e in eps)
    # test split = right half: the bowl starts at negative y (image right) and ends on the plate
    assert all(e.meta["spec"]["bowl_xy"][1] < 0 and e.meta["spec"]["cell"][1] >= 2 for e in eps)
    assert all(30 <= len(e) <= 60 for e in eps)
    assert np.array_equal([e.action[-1, 3] for e in eps], [0.0, 0.0, 0.0])     # released at the end


def test_a_failed_demo_is_re_run_with_the_next_seed_and_three_failures_are_an_error(monkeypatch, capsys):
    """The tabletop expert with its success check patched to fail on chosen seeds: a failed first attempt is
    replaced by the retry's demo (its seed recorded), the other demos are the ones a clean run gives."""
    import pytest

    from video_para.envs import ENVS, expert
    from video_para.envs.tabletop import TabletopConfig
    env = ENVS.build(TabletopConfig(image_height=32, image_width=32))
    scenes = [{"bowl_xy": [0.0, 0.2]}, {"bowl_xy": [-0.1, -0.1]}]
    clean = expert.generate_demos(env, scenes, seed=4, progress=False)
    real, failing = expert.run_expert, {4 * 100003 + 1}

    def run(env, spec, seed, index=0):
        ep, ok = real(env, spec, seed, index=index)
        return ep, ok and seed not in failing
    monkeypatch.setattr(expert, "run_expert", run)
    demos = expert.generate_demos(env, scenes, seed=4, progress=False)
    retry = 4 * 100003 + 1 + expert.RETRY_SEED_STRIDE
    assert [e.meta["seed"] for e in demos] == [4 * 100003, retry]
    assert np.array_equal(demos[0].ee_pos, clean[0].ee_pos) and not np.array_equal(demos[1].ee_pos, clean[1].ee_pos)
    assert f"failed on spec {scenes[1]} with seed {4 * 100003 + 1}; trying the next seed" in capsys.readouterr().out
    failing |= {retry, retry + expert.RETRY_SEED_STRIDE}
    with pytest.raises(RuntimeError, match=r"failed 3 times on spec .*'bowl_xy': \[-0.1, -0.1\].*\(seeds \[400013, 1400016, 2400019\]\)"):
        expert.generate_demos(env, scenes, seed=4, progress=False)
