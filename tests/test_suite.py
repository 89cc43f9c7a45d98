import json

import pytest

from video_para import suite
from video_para.config import CONFIG_ROOT, load_config
from video_para.scenes import load_protocol, specs

SMALL = ["train.steps=2", "train.batch_size=4", "train.warmup_steps=1", "policy.image_height=64", "policy.image_width=64",
         "env.image_height=64", "env.image_width=64", "eval.max_steps=6", "eval.videos=1"]


def write_suite(tmp_path, seeds="[0]"):
    path = tmp_path / "s.yaml"
    path.write_text(f"""
name: small
seeds: {seeds}
output_dir: {tmp_path / 'out'}
comparisons:
  - name: lr
    protocol: left_right
    protocol_overrides: ["rows=2", "cols=4"]
    episodes: 3
    methods:
      - {{name: PARA, experiment: tiny_para}}
      - {{name: global MLP, experiment: tiny_global_mlp}}
""")
    return path


def test_suite_trains_evaluates_reports_and_resumes(tmp_path, monkeypatch, capsys):
    path = write_suite(tmp_path, "[0, 1]")
    results = suite.main([str(path), *SMALL])
    out = tmp_path / "out"
    assert [(r["method"], r["seed"]) for r in results] == [("PARA", 0), ("global MLP", 0), ("PARA", 1), ("global MLP", 1)]
    assert all(r["episodes"] == 3 == len(r["rollouts"]) for r in results)
    assert all(r["offline"].keys() == {"pixel_error_px", "xyz_error_m", "height_error_m", "gripper_agreement",
                                            "failed_windows"} for r in results)
    md = (out / "results.md").read_text()
    assert "| lr | PARA |" in md and "over 2 seeds" in md and "54%" in md and "| 1% |" in md  # paper column
    assert "| lr | PARA |" in md.split("never grasped")[1]                                  # failure breakdown
    assert f"runs: 4 ({sum(r['seconds'] for r in results):.0f} s)" in md                     # compute time
    assert (out / "lr.png").stat().st_size > 0 and (out / "offline.md").exists()
    assert (out / "lr" / "para" / "seed1" / "videos" / "episode_000.png").exists()
    # a second call reuses finished runs instead of training again
    monkeypatch.setattr(suite, "finetune", lambda *a, **k: pytest.fail("retrained a finished run"))
    again = suite.main([str(path), *SMALL])
    assert [r["successes"] for r in again] == [r["successes"] for r in results]
    assert json.loads((out / "lr" / "para" / "seed0" / "result.json").read_text())["seed"] == 0
    # ... but never one made with another config: that is re-run, naming the keys that differ
    monkeypatch.setattr(suite, "finetune", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("re-run")))
    with pytest.raises(RuntimeError, match="re-run"):
        suite.main([str(path), *SMALL, "train.steps=3"])
    assert "lr/PARA seed 0: " in capsys.readouterr().out.split("another config (train.steps: 2 -> 3); re-running")[0]
    assert not (out / "lr" / "para" / "seed0").exists()
    (out / "lr" / "para" / "seed0").mkdir(parents=True)       # stands in for the re-run (tabulated next as missing)
    # report_only tabulates what has finished and trains nothing
    (out / "lr" / "global_mlp" / "seed1" / "result.json").unlink()
    partial = suite.main([str(path), *SMALL, "suite.report_only=true"])
    table = (out / "results.md").read_text().split("\n\n")[0]                               # the success table
    rows = {line.split("|")[2].strip(): line for line in table.splitlines()[2:]}
    assert [(r["method"], r["seed"]) for r in partial] == [("global MLP", 0), ("PARA", 1)]
    assert f"({partial[1]['successes']}/3) | 54% |" in rows["PARA"] and f"({partial[0]['successes']}/3) | 1% |" in rows["global MLP"]


def test_report_pools_seeds_and_writes_known_tables(tmp_path, capsys):
    """Hand-made results (no training): every number in results.md/csv and offline.md is known."""
    out = tmp_path / "out"
    lr = suite.ComparisonConfig(name="lr", protocol="left_right", protocol_overrides=["rows=2", "cols=10"], methods=[
        suite.MethodSpec(name="PARA", experiment="tiny_para"),
        suite.MethodSpec(name="global MLP", experiment="tiny_global_mlp"),
        suite.MethodSpec(name="PARA two-stage", experiment="tiny_svd_two_stage", pretrain=["tiny_svd_pretrain"],
                         paper_from_protocol=False)])
    cfg = suite.SuiteConfig(seeds=[0, 1], output_dir=str(out), comparisons=[lr])
    scenes = specs(load_protocol("left_right", ["rows=2", "cols=10"]), "test")[:5]

    def run(method, seed, paper, successes, grasps, seconds, offline):
        return {"comparison": "lr", "method": method, "seed": seed, "successes": sum(successes), "episodes": 5,
                "paper": paper, "seconds": seconds, "offline": dict(zip(
                    ["pixel_error_px", "height_error_m", "gripper_agreement", "failed_windows"], offline)),
                "rollouts": [{"spec": s, "success": ok, "steps": 10, "grasps": g}
                             for s, ok, g in zip(scenes, successes, grasps)]}
    F, T = False, True
    results = [run("PARA", 0, 54, [T, F, F, F, F], [1, 0, 0, 1, 2], 10, [2.0, 0.01, 0.5, 0.0]),
               run("PARA", 1, 54, [T, T, T, T, F], [1, 1, 1, 1, 0], 20, [4.0, 0.03, 1.0, 0.1]),
               run("global MLP", 0, 1, [T, F, F, F, F], [None] * 5, 30, [1.0, 0.02, 0.9, 0.0]),
               run("global MLP", 1, 1, [T, T, F, F, F], [None] * 5, 40, [2.0, 0.04, 0.8, 0.0]),
               run("PARA two-stage", 0, None, [T, T, F, F, F], [1, 1, 0, 0, 0], 50, [0.5, 0.005, 1.0])]
    pretrain = suite.pretrain_dir(out, ["tiny_svd_pretrain"], 0)
    pretrain.mkdir(parents=True)
    (pretrain / "throughput.json").write_text(json.dumps({"seconds": 25}))
    suite.run_dir(out, "lr", "PARA", 0).mkdir(parents=True)
    (suite.run_dir(out, "lr", "PARA", 0) / "metrics.csv").write_text("step,loss\n1,2.0\n2,1.5\n")
    written = suite.report(cfg, results, out)
    assert (out / "results.md").read_text() == """\
| protocol | method | success | paper |
|---|---|---|---|
| lr | PARA | 50% ± 30 over 2 seeds (5/10) | 54% |
| lr | global MLP | 30% ± 10 over 2 seeds (3/10) | 1% |
| lr | PARA two-stage | 40% (2/5) | — |

Failures by what the rollout reached (runs that recorded grasps):

| protocol | method | success | failed, never grasped | failed after grasping | grasps per episode |
|---|---|---|---|---|---|
| lr | PARA | 5/10 | 3/10 | 2/10 | 0.8 |
| lr | PARA two-stage | 2/5 | 3/5 | 0/5 | 0.4 |

Compute: 175 s (0.05 h); runs: 5 (150 s); pretraining runs: 1 (25 s, training only).
"""
    assert (out / "results.csv").read_text().splitlines() == [
        "protocol,method,successes,episodes,success_rate,seed_rates,paper",
        "lr,PARA,5,10,0.5,0.2000 0.8000,54", "lr,global MLP,3,10,0.3,0.2000 0.4000,1", "lr,PARA two-stage,2,5,0.4,0.4000,"]
    assert (out / "offline.md").read_text().splitlines()[2:] == [
        "| lr | test | PARA | 3.0 | 2.0 | 0.75 | 5.0% |", "| lr | test | global MLP | 1.5 | 3.0 | 0.85 | 0.0% |",
            "| lr | test | PARA two-stage | 0.5 | 0.5 | 1.00 | — |"]     # a run recorded before the column: a dash
    assert written == [out / "results.md", out / "results.csv", out / "offline.md", out / "lr.png", out / "lr_loss.png"]
    assert all(p.stat().st_size > 0 for p in written)
    assert capsys.readouterr().out.count("no loss curve") == 2                    # only PARA seed 0 wrote one


def test_only_runs_the_named_comparisons_and_methods(tmp_path):
    path = write_suite(tmp_path)
    path.write_text(path.read_text() + """  - name: second
    protocol: left_right
    protocol_overrides: ["rows=2", "cols=4"]
    episodes: 1
    methods: [{name: PARA, experiment: tiny_para}]
""")
    results = suite.main([str(path), *SMALL, "suite.only=[second]"])
    assert [(r["comparison"], r["method"]) for r in results] == [("second", "PARA")]
    assert not (tmp_path / "out" / "lr").exists()
    with pytest.raises(ValueError, match=r"only=\['lr2'\] names no comparison"):
        suite.main([str(path), *SMALL, "suite.only=[lr2]"])
    results = suite.main([str(path), *SMALL, "suite.only=[lr]", "suite.methods=[global MLP]"])
    assert [(r["comparison"], r["method"]) for r in results] == [("lr", "global MLP")]
    assert not (tmp_path / "out" / "lr" / "para").exists()
    with pytest.raises(ValueError, match=r"methods=\['MLP'\] names no method"):
        suite.main([str(path), *SMALL, "suite.methods=[MLP]"])



def test_a_validation_suite_rolls_out_the_holdout_and_never_the_test_scenes(tmp_path):
    """split: val rolls out (and measures offline on) the protocol's holdout, shows no paper number, and a
    protocol without a holdout is an error naming the comparison before anything trains."""
    path = tmp_path / "s.yaml"
    overrides = ["rows=2", "cols=8", "holdout=boundary", "holdout_width=1"]
    path.write_text(f"""
name: small
seeds: [0]
output_dir: {tmp_path / 'out'}
comparisons:
  - {{name: lr_val, protocol: left_right, protocol_overrides: {json.dumps(overrides)}, split: val,
     methods: [{{name: PARA, experiment: tiny_para}}]}}
""")
    [result] = suite.main([str(path), *SMALL])
    protocol = load_protocol("left_right", overrides)
    val, test = specs(protocol, "val"), specs(protocol, "test")
    assert [e["spec"] for e in result["rollouts"]] == val and len(val) == 2 and len(test) == 8
    assert not {json.dumps(s, sort_keys=True) for s in val} & {json.dumps(s, sort_keys=True) for s in test}
    assert result["split"] == "val" and result["paper"] is None and result["episodes"] == 2
    k = result["successes"]
    assert f"| lr_val | PARA | {50 * k}% ({k}/2) | — |" in (tmp_path / "out" / "results.md").read_text()
    assert "| lr_val | val | PARA |" in (tmp_path / "out" / "offline.md").read_text()
    path.write_text(path.read_text().replace(', "holdout=boundary", "holdout_width=1"', ""))
    with pytest.raises(ValueError, match="has no validation split"):
        suite.main([str(path), *SMALL, f"suite.output_dir={tmp_path / 'none'}"])
    assert not (tmp_path / "none").exists()

@pytest.mark.parametrize("entry", ["suite", "quickstart"])
def test_a_misspelt_override_is_an_error_before_anything_is_written(tmp_path, monkeypatch, entry):
    from video_para import quickstart
    monkeypatch.chdir(tmp_path)
    run = (lambda args: suite.main([str(write_suite(tmp_path)), *args])) if entry == "suite" else quickstart.main
    with pytest.raises(ValueError, match=r"train.stepz: Key 'stepz' not in 'TrainConfig'"):
        run(["train.stepz=5"])
    assert [p.name for p in tmp_path.iterdir()] == (["s.yaml"] if entry == "suite" else [])


def test_subsample_spreads_over_the_split():
    assert suite.subsample(list(range(10)), 3) == [0, 4, 9] and suite.subsample(list(range(9)), 5) == [0, 2, 4, 6, 8]
    assert suite.subsample([1, 2], 0) == [1, 2]


def test_same_seed_same_table(tmp_path):
    """Determinism (issue: the same seed gives the same table): two fresh runs agree exactly."""
    path = write_suite(tmp_path)
    first = suite.main([str(path), *SMALL])
    second = suite.main([str(path), *SMALL, f"suite.output_dir={tmp_path / 'again'}"])
    for a, b in zip(first, second):
        assert a["offline"] == b["offline"] and a["successes"] == b["successes"]
        assert [e["steps"] for e in a["rollouts"]] == [e["steps"] for e in b["rollouts"]]


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIG_ROOT / "suite").glob("*.yaml")))
def test_every_committed_suite_resolves_every_run(name, tmp_path):
    """Every run's experiment config and protocol split resolve (a typo in a suite fails here, not hours
    into `make reproduce`), and the paper's protocols show the paper's number beside PARA and the MLP."""
    cfg = load_config(suite.SuiteConfig, [f"config={CONFIG_ROOT / 'suite' / f'{name}.yaml'}"])
    runner, papers = suite.Runner(cfg, []), {}
    for comp in cfg.comparisons:
        for method in comp.methods:
            run = runner.config(comp, method, cfg.seeds[0])
            protocol = load_protocol(run.data.protocol, run.data.protocol_overrides)
            assert specs(protocol, "train") and specs(protocol, comp.split)
            papers[comp.name, method.name] = suite.Runner.paper(method, protocol, run)
    if name == "reproduce":
        for comp in ("near_far", "hemisphere", "new_environment"):
            assert [m.name for m in cfg.comparisons[0].methods] == [m for c, m in papers if c == comp]
            assert (papers[comp, "PARA"], papers[comp, "global MLP"]) == {
                "near_far": (46, 7), "hemisphere": (40, 10), "new_environment": (94, 0)}[comp]


def test_comparisons_that_train_alike_train_once(tmp_path, monkeypatch, capsys):
    """Same training scenes and config, different test scenes (clutter): the second comparison reuses the
    first one's policy; a comparison with other training scenes trains."""
    path = tmp_path / "s.yaml"
    path.write_text(f"""
name: small
seeds: [0]
output_dir: {tmp_path / 'out'}
comparisons:
  - {{name: clean, protocol: left_right, protocol_overrides: ["rows=2", "cols=4"], episodes: 2,
     methods: [{{name: PARA, experiment: tiny_para}}]}}
  - {{name: cluttered, protocol: left_right, protocol_overrides: ["rows=2", "cols=4", "test_distractors=2"], episodes: 2,
     methods: [{{name: PARA, experiment: tiny_para}}]}}
  - {{name: wider, protocol: left_right, protocol_overrides: ["rows=2", "cols=6"], episodes: 2,
     methods: [{{name: PARA, experiment: tiny_para}}]}}
""")
    trained = []
    real = suite.finetune
    monkeypatch.setattr(suite, "finetune", lambda cfg, **k: trained.append(cfg.data.protocol_overrides) or real(cfg, **k))
    results = suite.main([str(path), *SMALL])
    assert trained == [["rows=2", "cols=4"], ["rows=2", "cols=6"]]
    out = tmp_path / "out"
    assert results[1]["trained_in"] == str(out / "clean" / "para" / "seed0") and "trained_in" not in results[2]
    a, b = (json.loads((out / c / "para" / "seed0" / "policy" / "config.json").read_text()) for c in ("clean", "cluttered"))
    assert (out / "clean/para/seed0/policy/model.safetensors").read_bytes() == \
        (out / "cluttered/para/seed0/policy/model.safetensors").read_bytes()
    assert b["run"]["data"]["protocol_overrides"] == ["rows=2", "cols=4", "test_distractors=2"]   # eval.py: its own test
    assert a["run"]["data"]["protocol_overrides"] == ["rows=2", "cols=4"]
    clean = load_protocol("left_right", ["rows=2", "cols=4"])
    cfg = load_config(suite.ExperimentConfig, ["experiment=tiny_para", "eval.every=5"])
    assert suite.training_key(cfg, clean) == ""          # periodic evaluation rolls out on the test scenes
    # a second call reports all three as finished (the copy carries its own config.yaml)
    monkeypatch.setattr(suite, "finetune", lambda *a, **k: pytest.fail("retrained a finished run"))
    assert [r["successes"] for r in suite.main([str(path), *SMALL])] == [r["successes"] for r in results]
