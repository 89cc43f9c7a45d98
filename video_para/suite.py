"""Experiment suites: methods x OOD protocols x seeds, trained, rolled out and reported in one go.

    python -m video_para.suite quickstart [key=value ...]    # configs/suite/quickstart.yaml
    python -m video_para.suite reproduce  [key=value ...]    # every experiment of the paper, in miniature

A suite (configs/suite/<name>.yaml) lists comparisons; each names a protocol (its train split gives
the demos, its test split the rollouts, or with `split: val` its validation holdout: a suite that
chooses between variants without the test scenes, e.g. configs/suite/validate.yaml) and methods, each method an experiment config under
configs/experiment/ plus overrides, optionally initialised from a pretraining experiment run first.
`key=value` arguments are applied to every experiment (e.g. `train.steps=300`); suite fields are
set with `suite.<field>=...` (e.g. `suite.seeds=[0,1,2]`; `suite.only=[...]` / `suite.methods=[...]` run some
comparisons / methods; `suite.report_only=true` tabulates what has finished so far). A finished run (its result.json) is reused only if its config.yaml equals the config
requested now, so an interrupted suite continues where it stopped; one made with another config (say
an earlier train.steps) is re-run, and the keys that differ are printed. Comparisons that train alike
(the same training scenes and config, e.g. distractors and new_environment: clean demos, different test
scenes) train once: the later run copies the earlier one's policy (training_key.json; `trained_in` in its
result.json). Writes <output_dir>/results.md|csv
(success with per-seed spread beside the paper's number, and offline errors on held-out demos),
the paper's plots per comparison, and each run's policy, metrics, videos and overlays.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import CONFIG_ROOT, exit_if_help, load_config, to_dict, to_yaml
from .data.sources import build_dataset
from .data.windows import WindowDataset
from .envs import ENVS
from .envs.expert import generate_demos
from .eval.offline import offline_metrics
from .eval.report import plot_loss_curves, plot_protocol, success_table, write_json
from .eval.rollout import EpisodeResult, RolloutResult, rollout
from .experiment import ExperimentConfig
from .models.policy import Policy
from .scenes import load_protocol, specs
from .training.checkpoint import config_diff
from .training.cli import finetune

USAGE = "python -m video_para.suite NAME|PATH.yaml [suite.field=value ...] [experiment key=value ...]"


@dataclass
class MethodSpec:
    name: str = ""                      # table label, e.g. "PARA"
    experiment: str = ""                # configs/experiment/<experiment>.yaml
    overrides: list[str] = field(default_factory=list)
    pretrain: list[str] = field(default_factory=list)   # experiments run first, in order, each initialised from
                                        # the one before (the first from nothing); the last initialises this one
    paper: float | None = None          # the paper's success % (else the protocol's `paper` entry for the head,
    paper_from_protocol: bool = True    # unless this is false: a variant the protocol's number does not describe)


@dataclass
class ComparisonConfig:
    name: str = ""
    protocol: str = "left_right"
    protocol_overrides: list[str] = field(default_factory=list)
    episodes: int = 0                   # episodes, evenly subsampled from the split (0: all)
    split: str = "test"                 # the scenes rolled out: test, or val (the protocol's holdout, carved from the
                                        # training cells) to choose between variants without the test scenes
    methods: list[MethodSpec] = field(default_factory=list)


@dataclass
class SuiteConfig:
    name: str = "quickstart"
    seeds: list[int] = field(default_factory=lambda: [0])
    output_dir: str = "outputs/quickstart"
    report_only: bool = False           # tabulate the runs already finished (listing the missing ones), train nothing
    only: list[str] = field(default_factory=list)   # run just these comparisons (e.g. to split a suite across machines)
    methods: list[str] = field(default_factory=list)   # ... and just these methods, by name (e.g. one new variant)
    comparisons: list[ComparisonConfig] = field(default_factory=list)

    def validate(self) -> None:
        if not self.seeds or not self.comparisons:
            raise ValueError(f"suite '{self.name}': needs at least one seed and one comparison")
        for c in self.comparisons:
            if not c.methods:
                raise ValueError(f"suite '{self.name}', comparison '{c.name}': no methods")
            if c.split not in ("test", "val"):
                raise ValueError(f"suite '{self.name}', comparison '{c.name}': split must be test or val, got '{c.split}'")
        unknown = set(self.only) - {c.name for c in self.comparisons}
        if unknown:
            raise ValueError(f"suite '{self.name}': only={sorted(unknown)} names no comparison "
                             f"(it has {[c.name for c in self.comparisons]})")
        names = {m.name for c in self.comparisons for m in c.methods}
        if unknown := set(self.methods) - names:
            raise ValueError(f"suite '{self.name}': methods={sorted(unknown)} names no method (it has {sorted(names)})")


def experiment_config(method: MethodSpec, comp: ComparisonConfig, seed: int, out: Path, common: list[str]) -> ExperimentConfig:
    args = [f"experiment={method.experiment}", f"data.protocol={comp.protocol}",
            f"data.protocol_overrides={json.dumps(comp.protocol_overrides)}", *method.overrides, *common,
            f"seed={seed}", f"output_dir={out}"]
    return load_config(ExperimentConfig, args)


def slug(name: str) -> str:
    """A method's folder name: its table label, lower-case, alphanumerics and underscores."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def run_dir(out: Path, comparison: str, method: str, seed: int) -> Path:
    """Where one method's run of one comparison and seed lives: <out>/<comparison>/<slug(method)>/seed<k>."""
    return out / comparison / slug(method) / f"seed{seed}"


def pretrain_dir(out: Path, chain: list[str], seed: int) -> Path:
    """Where the last run of a pretraining chain, shared by the methods that start from it, lives."""
    return out / "pretrain" / "+".join(chain) / f"seed{seed}"


def subsample(items: list, n: int) -> list:
    """n items spread evenly over the list (every cell and viewpoint represented), all when n is 0."""
    if not n or n >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


class Runner:
    """Runs the comparisons of one suite, sharing demos between methods that use the same data."""

    def __init__(self, suite: SuiteConfig, common: list[str]):
        self.suite, self.common, self.out = suite, common, Path(suite.output_dir)
        self._data_key, self._data, self._shown = None, None, False

    def dataset(self, cfg: ExperimentConfig):
        key = (to_yaml(cfg.data), to_yaml(cfg.env), cfg.policy.n_window, cfg.seed)
        if key != self._data_key:
            self._data = None                          # free the previous demos first
            self._data = build_dataset(cfg.data, cfg.env, cfg.policy.n_window, seed=cfg.seed)
            self._data_key = key
        return self._data

    def pretrained(self, chain: list[str], seed: int) -> Path:
        """Run (or reuse) each stage of `chain`, each from the previous stage's policy; the last policy."""
        init = ""
        for i, experiment in enumerate(chain):
            out = pretrain_dir(self.out, chain[:i + 1], seed)
            cfg = load_config(ExperimentConfig, [f"experiment={experiment}", *self.common, f"train.init_from={init}",
                                                 f"seed={seed}", f"output_dir={out}"])
            if not (out / "policy" / "model.safetensors").exists() or discard_if_changed(out, cfg, experiment):
                print(f"[suite] pretraining {experiment} (seed {seed}) -> {out}")
                finetune(cfg, dataset=self.dataset(cfg))
            init = str(out / "policy")
        return Path(init)

    def config(self, comp: ComparisonConfig, method: MethodSpec, seed: int) -> ExperimentConfig:
        """One run's resolved config; its pretraining chain's last policy (see pretrained()) as train.init_from."""
        init = [f"train.init_from={pretrain_dir(self.out, method.pretrain, seed) / 'policy'}"] if method.pretrain else []
        return experiment_config(method, comp, seed, run_dir(self.out, comp.name, method.name, seed), self.common + init)

    def finished(self, comp: ComparisonConfig, method: MethodSpec, seed: int, discard: bool = True) -> dict | None:
        """The run's result, if it finished with the config requested now. One made with another config
        is never reported: its differing keys are printed and (`discard`) its folder removed."""
        out, name = run_dir(self.out, comp.name, method.name, seed), f"{comp.name}/{method.name} seed {seed}"
        if not (out / "result.json").exists():
            return None
        cfg = self.config(comp, method, seed)
        if discard:
            if discard_if_changed(out, cfg, name):
                return None
        elif (why := changes(out, cfg)):
            print(f"[suite] {name}: finished with another config ({why}); not reported")
            return None
        return json.loads((out / "result.json").read_text())

    def run(self, comp: ComparisonConfig, method: MethodSpec, seed: int) -> dict:
        if (done := self.finished(comp, method, seed)) is not None:
            return done
        out = run_dir(self.out, comp.name, method.name, seed)
        if method.pretrain:
            self.pretrained(method.pretrain, seed)          # the policy self.config() starts from
        cfg = self.config(comp, method, seed)
        protocol = load_protocol(cfg.data.protocol, cfg.data.protocol_overrides)
        scenes = subsample(specs(protocol, comp.split), comp.episodes)
        if not self._shown:
            print(f"[suite] resolved config of the first run (every run writes its own config.yaml):\n{to_yaml(cfg)}")
            self._shown = True
        t0 = time.time()
        key = training_key(cfg, protocol)
        source = self.trained_alike(key, cfg.seed, out)
        policy = copy_trained(source, cfg, out) if source else finetune(cfg, dataset=self.dataset(cfg))
        if key:
            (out / TRAINING_KEY).write_text(key)
        env = ENVS.build(cfg.env)
        try:
            res = rollout(policy, env, scenes, cfg.eval.replan_every, cfg.eval.max_steps, seed=seed,
                          video_dir=out / "videos", n_videos=cfg.eval.videos, desc=f"eval {comp.name}/{method.name}")
            held_out = WindowDataset(generate_demos(env, scenes, seed=seed + 7919, progress=False), cfg.policy.n_window)
        finally:
            env.close()
        result = {"comparison": comp.name, "method": method.name, "experiment": method.experiment, "seed": seed,
                  "split": comp.split, "successes": res.successes, "episodes": len(scenes),
                  "paper": self.paper(method, protocol, cfg) if comp.split == "test" else None,
                  "offline": offline_metrics(policy, held_out), "seconds": round(time.time() - t0, 1),
                  "rollouts": [asdict(e) for e in res.episodes]}
        if source:
            result["trained_in"] = str(source)
        write_json(out / "result.json", result)
        print(f"[suite] {comp.name}/{method.name} seed {seed}: {res.successes}/{len(scenes)} ({comp.split} scenes)")
        return result

    def trained_alike(self, key: str, seed: int, out: Path) -> Path | None:
        """A finished run of this suite trained exactly as this one would be (same training_key, e.g.
        distractors and new_environment both train on the same clean demos); None if there is none."""
        if not key:
            return None
        return next((found.parent for found in sorted(self.out.glob(f"*/*/seed{seed}/{TRAINING_KEY}"))
                     if found.parent != out and found.read_text() == key and (found.parent / "result.json").exists()),
                    None)

    @staticmethod
    def paper(method: MethodSpec, protocol, cfg: ExperimentConfig):
        if method.paper is not None or not method.paper_from_protocol:
            return method.paper
        return protocol.paper.get(cfg.policy.head.type)


TRAINING_KEY = "training_key.json"


def training_key(cfg: ExperimentConfig, protocol) -> str:
    """What the trained weights depend on: the training scenes and the config apart from the protocol's
    name, evaluation and output folder. '' (never shared) for data that is not simulated here, and when
    periodic evaluation logs rollouts on the protocol's test scenes during training."""
    if cfg.data.source != "sim" or cfg.eval.every:
        return ""
    config = {k: v for k, v in to_dict(cfg).items() if k not in ("eval", "output_dir")}
    config["data"] = {k: v for k, v in config["data"].items() if k not in ("protocol", "protocol_overrides")}
    return json.dumps({"config": config, "train_scenes": specs(protocol, "train")}, sort_keys=True, default=repr)


def copy_trained(source: Path, cfg: ExperimentConfig, out: Path) -> Policy:
    """`source`'s policy saved into `out` as this run's (its training time is not counted again)."""
    print(f"[suite] {out}: trained exactly as {source} (same demos, same training config); reusing its policy")
    policy = Policy.from_pretrained(source / "policy")
    policy.run = to_dict(cfg)           # eval.py on this copy evaluates as this run does
    policy.save_pretrained(out / "policy")
    for name in ("metrics.csv", "run.json"):
        shutil.copy2(source / name, out / name)
    (out / "config.yaml").write_text(to_yaml(cfg))
    return policy


def changes(out: Path, cfg: ExperimentConfig) -> str:
    """'' if the run in `out` was made with `cfg` (its config.yaml, output folder and logging aside),
    else the keys that differ."""
    if not (out / "config.yaml").exists():
        return "it has no config.yaml"
    return ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in config_diff(out, to_dict(cfg)).items())


def discard_if_changed(out: Path, cfg: ExperimentConfig, name: str) -> bool:
    """Remove the finished run in `out` if it was made with another config than `cfg` (printing how)."""
    if not (why := changes(out, cfg)):
        return False
    print(f"[suite] {name}: {out} was made with another config ({why}); re-running")
    shutil.rmtree(out)
    return True


def _percent(fraction) -> str:
    return "—" if fraction is None or np.isnan(fraction) else f"{100 * fraction:.1f}%"


def report(suite: SuiteConfig, results: list[dict], out: Path) -> list[Path]:
    """Combined table (seeds pooled, spread across seeds), offline errors, and the paper's plots."""
    rows, written, grasping = [], [], []
    offline = ["| comparison | split | method | pixel error (px) | height error (cm) | gripper agreement "
               "| windows not decodable |",
               "|---|---|---|---|---|---|---|"]
    for comp in suite.comparisons:
        per_method: dict[str, RolloutResult] = {}
        for m in comp.methods:
            runs = [r for r in results if r["comparison"] == comp.name and r["method"] == m.name]
            if not runs:
                continue
            rows.append({"protocol": comp.name, "method": m.name, "successes": sum(r["successes"] for r in runs),
                         "episodes": sum(r["episodes"] for r in runs),
                         "paper": runs[0]["paper"] if m.paper_from_protocol else m.paper,
                         "seed_rates": [r["successes"] / max(1, r["episodes"]) for r in runs]})
            off = {k: np.mean([r["offline"].get(k, np.nan) for r in runs]) for k in runs[0]["offline"]}
            offline.append(f"| {comp.name} | {comp.split} | {m.name} | {off['pixel_error_px']:.1f} | {100 * off['height_error_m']:.1f} "
                           f"| {off['gripper_agreement']:.2f} | {_percent(off.get('failed_windows'))} |")
            per_seed = [[EpisodeResult(**e) for e in r["rollouts"]] for r in runs]
            per_method[m.name] = RolloutResult(per_seed[0])
            grasping.append((comp.name, m.name, [e for episodes in per_seed for e in episodes]))
        if per_method:
            protocol = load_protocol(comp.protocol, comp.protocol_overrides)
            if plot := plot_protocol(per_method, protocol, out, comp.name, split=comp.split):
                written.append(plot)
            metrics = {m.name: run_dir(out, comp.name, m.name, suite.seeds[0]) / "metrics.csv"
                       for m in comp.methods if m.name in per_method}
            written.append(plot_loss_curves(metrics, out / f"{comp.name}_loss.png"))
    md, csv_path = success_table(rows, out, grasps=grasping, notes=f"\n{compute_time(suite, results, out)}\n")
    (out / "offline.md").write_text("\n".join(offline) + "\n")
    return [md, csv_path, out / "offline.md", *written]


def compute_time(suite: SuiteConfig, results: list[dict], out: Path) -> str:
    """Wall time the tabulated runs took (each run's training + rollouts + offline metrics), plus the
    pretraining runs they used; runs reused from earlier invocations count with their own time."""
    runs = sum(r["seconds"] for r in results)
    used = sorted({(tuple(m.pretrain[:i + 1]), r["seed"]) for c in suite.comparisons for m in c.methods
                   for r in results if (r["comparison"], r["method"]) == (c.name, m.name)
                   for i in range(len(m.pretrain))})
    pretrains = [json.loads(p.read_text())["seconds"] for chain, seed in used
                 if (p := pretrain_dir(out, list(chain), seed) / "throughput.json").exists()]
    total = runs + sum(pretrains)
    return (f"Compute: {total:.0f} s ({total / 3600:.2f} h); runs: {len(results)} ({runs:.0f} s); "
            f"pretraining runs: {len(pretrains)} ({sum(pretrains):.0f} s, training only).")


def main(argv: list[str] | None = None) -> list[dict]:
    argv = list(sys.argv[1:] if argv is None else argv)
    exit_if_help(argv, USAGE, __doc__, SuiteConfig)
    if not argv or "=" in argv[0]:
        sys.exit(f"usage: {USAGE}")
    name, rest = argv[0], argv[1:]
    suite_args = [a.removeprefix("suite.") for a in rest if a.startswith("suite.")]
    common = [a for a in rest if not a.startswith("suite.")]
    for a in common:
        if a.split("=", 1)[0] in ("seed", "output_dir"):
            sys.exit(f"'{a}': the suite sets seeds and output folders itself; use suite.seeds=[...] / suite.output_dir=...")
    path = Path(name) if name.endswith(".yaml") else CONFIG_ROOT / "suite" / f"{name}.yaml"
    suite = load_config(SuiteConfig, [f"config={path}", *suite_args])
    runner, results = Runner(suite, common), []
    planned = [(comp, method, seed) for comp in suite.comparisons if not suite.only or comp.name in suite.only
               for seed in suite.seeds for method in comp.methods if not suite.methods or method.name in suite.methods]
    for comp, method, seed in planned:                 # a typo in an override fails here, before anything is written
        run = runner.config(comp, method, seed)
        if not specs(load_protocol(run.data.protocol, run.data.protocol_overrides), comp.split):   # so does an empty split
            raise ValueError(f"suite '{suite.name}', comparison '{comp.name}': its {comp.split} split has no scenes")
    t0, out = time.time(), Path(suite.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.yaml").write_text(to_yaml(suite))
    print(f"[suite] {suite.name}: seeds {suite.seeds}, output {out}, overrides {common}")
    for comp, method, seed in planned:
        if suite.report_only:
            done = runner.finished(comp, method, seed, discard=False)
            results += [done] if done else []
            print(f"[suite] {comp.name}/{method.name} seed {seed}: " + ("finished" if done else "NOT RUN"))
            continue
        results.append(runner.run(comp, method, seed))
        print(f"[suite] {time.time() - t0:.0f} s so far")
    written = report(suite, results, out)
    print("\n" + (out / "results.md").read_text() + "\n" + (out / "offline.md").read_text())
    print("written:\n  " + "\n  ".join(map(str, written)))
    print(f"[suite] {suite.name} done in {time.time() - t0:.0f} s")
    return results


if __name__ == "__main__":
    main()
