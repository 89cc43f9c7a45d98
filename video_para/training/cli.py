"""`python finetune.py key=value ...` (also under `accelerate launch`)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable

from accelerate.utils import set_seed
from safetensors.torch import load_file

from ..config import load_config, to_dict
from ..data.sources import build_dataset
from ..experiment import STAGES, ExperimentConfig
from ..models.policy import Policy
from .checkpoint import checkpoints, config_diff
from .trainer import EVAL_KEY, build_accelerator, train, write_run_info


def init_from(policy: Policy, directory: Path, parts: list[str]) -> None:
    """Start `parts` of `policy` from a saved policy (stage 1: diffusion or point-track pretraining).
    Reads the safetensors directly: the source is never built (no second load of a large backbone)."""
    directory = Path(directory)
    meta_path, weights = directory / "config.json", directory / "model.safetensors"
    if not (meta_path.exists() and weights.exists()):
        raise FileNotFoundError(f"train.init_from={directory} is not a saved policy (config.json, model.safetensors)")
    source = json.loads(meta_path.read_text())["policy"]
    prefixes = ()
    for part in parts:
        key, part_prefixes = _part(policy, part)
        _check_same_config(directory, key, source[key], getattr(policy.config, key))
        prefixes += part_prefixes
    state = {k: v for k, v in load_file(weights).items() if k.startswith(prefixes)}
    expected = {k for k in policy.state_dict() if k.startswith(prefixes)}
    if set(state) != expected:
        raise ValueError(f"train.init_from={directory}: {parts} do not match this policy "
                         f"(missing {sorted(expected - set(state))[:5]}, unexpected {sorted(set(state) - expected)[:5]})")
    policy.load_state_dict(state, strict=False)


def _part(policy: Policy, part: str) -> tuple[str, tuple[str, ...]]:
    """(PolicyConfig field, state-dict prefixes) of a part train.init_parts may take: the whole
    backbone, or the part of the head it declares as its heatmap."""
    if part == "backbone":
        return "backbone", ("backbone.",)
    return "head", tuple("head." + p for p in policy.config.head.heatmap_part(f"train.init_parts '{part}'"))


def _check_same_config(directory: Path, key: str, theirs: dict, ours) -> None:
    """The source's `key` config must equal ours up to the fields that say how it is trained (TRAINING_ONLY)."""
    theirs, mine = ({k: v for k, v in cfg.items() if k not in ours.TRAINING_ONLY} for cfg in (theirs, to_dict(ours)))
    if theirs != mine:
        diff = sorted(k for k in theirs.keys() | mine.keys() if theirs.get(k) != mine.get(k))
        raise ValueError(f"train.init_from={directory}: its {key} differs from this run's in {diff} "
                         f"({ {k: theirs.get(k) for k in diff} } vs { {k: mine.get(k) for k in diff} })")


def periodic_eval(cfg: ExperimentConfig) -> Callable[[Policy], dict] | None:
    """Rollouts of the current policy on `eval.every_episodes` test scenes of the data's protocol, in
    the experiment's env (built on first use: only the main process evaluates)."""
    if not cfg.eval.every:
        return None
    from ..envs import ENVS
    from ..eval.rollout import rollout
    from ..scenes import load_protocol, specs
    scenes = specs(load_protocol(cfg.data.protocol, cfg.data.protocol_overrides), "test")
    scenes = scenes[::max(1, len(scenes) // cfg.eval.every_episodes)][:cfg.eval.every_episodes]
    env = None

    def evaluate(policy: Policy) -> dict:
        nonlocal env
        env = env or ENVS.build(cfg.env)
        res = rollout(policy, env, scenes, cfg.eval.replan_every, cfg.eval.max_steps, seed=cfg.seed, desc="eval")
        return {EVAL_KEY: res.rate}
    return evaluate


def finetune(cfg: ExperimentConfig, dataset=None, progress: bool = True) -> Policy:
    """Train the experiment's policy; `dataset` may be passed in to share demos between runs."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = build_accelerator(cfg.train, out)     # first: every message below prints once
    log = accelerator.print
    log(f"[{cfg.train.stage}] seed {cfg.seed}, output {out}, {accelerator.num_processes} process(es) x "
        f"batch {cfg.train.batch_size}, mixed precision {accelerator.mixed_precision}")
    if cfg.train.resume and (found := checkpoints(out)):
        check_resume_config(found[0], cfg, log)
    write_run_info(cfg, out, accelerator)
    if dataset is None:
        t0 = time.time()
        dataset = build_dataset(cfg.data, cfg.env, cfg.policy.n_window, seed=cfg.seed,
                                progress=progress and accelerator.is_main_process)
        log(f"[data] {len(dataset.episodes)} demos, {len(dataset)} windows ({dataset.dropped} dropped) "
            f"in {time.time() - t0:.1f} s")
    stats = dataset.stats()
    set_seed(cfg.seed)                  # the initial weights depend on the seed only, not on what ran before
    policy = Policy(cfg.policy, stats, run=to_dict(cfg))    # saved with it: eval.py evaluates it as this run does
    if cfg.train.init_from:
        init_from(policy, Path(cfg.train.init_from), cfg.train.init_parts)
        log(f"[init] {', '.join(cfg.train.init_parts)} weights from {cfg.train.init_from}")
    policy = train(policy, dataset, cfg, accelerator, progress=progress, evaluate=periodic_eval(cfg))
    log(f"[{cfg.train.stage}] policy saved to {out / 'policy'}")
    return policy


def check_resume_config(checkpoint: Path, cfg: ExperimentConfig, log: Callable[[str], None]) -> None:
    """A resume continues the same run: a changed config is refused unless train.resume_override."""
    diff = config_diff(checkpoint, to_dict(cfg))
    if not diff:
        return
    changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
    if not cfg.train.resume_override:
        raise SystemExit(f"train.resume: this run's config differs from {checkpoint / 'config.yaml'} in {changes}. "
                         "Resume with the same config, or add train.resume_override=true to continue anyway")
    log(f"[resume] train.resume_override: continuing {checkpoint} with {changes}")


def check_output_dir(cfg: ExperimentConfig) -> None:
    """A used output_dir is refused without train.resume: its policy, metrics and checkpoints would mix
    with this run's (and a later resume would continue the other run's state)."""
    out = Path(cfg.output_dir)
    used = [name for name in ("policy", "metrics.csv", "checkpoints") if (out / name).exists()]
    if used and not cfg.train.resume:
        raise SystemExit(f"output_dir={out} holds another run ({', '.join(used)}): choose a new output_dir, "
                         "delete it, or continue it with train.resume=true")


def main(argv: list[str] | None = None, stages: tuple[str, ...] = STAGES, script: str = "finetune") -> None:
    cfg = load_config(ExperimentConfig, sys.argv[1:] if argv is None else argv)
    if cfg.train.stage not in stages:
        raise SystemExit(f"{script}.py runs train.stage {' | '.join(stages)}; this experiment has "
                         f"train.stage={cfg.train.stage}")
    check_output_dir(cfg)
    finetune(cfg)
