"""Reports: success tables (Markdown + CSV), the paper's plots and heatmap overlays. The eval CLI,
the suite and the SO-100 dry run assemble theirs from these pieces, so their files read alike."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..scenes import ProtocolConfig, specs

_STEP_COLORS = np.array([[255, 255, 0], [255, 128, 0], [255, 0, 0], [255, 0, 255]], dtype=np.float64)


def overlay(image: np.ndarray, pixels: np.ndarray | None, heatmaps: np.ndarray | None, scale: int = 3) -> np.ndarray:
    """Image upscaled by `scale`, with the max over steps of the PARA heatmaps blended in green and
    the predicted target pixels drawn as dots (yellow = next step ... magenta = last)."""
    img = np.repeat(np.repeat(image.astype(np.float64), scale, 0), scale, 1)
    if heatmaps is not None:
        h = heatmaps.max(0)
        h = np.repeat(np.repeat(h / max(h.max(), 1e-12), scale * image.shape[0] // h.shape[0], 0),
                      scale * image.shape[1] // h.shape[1], 1)
        img = img * (1 - 0.6 * h[..., None]) + 0.6 * h[..., None] * np.array([0, 255, 0])
    if pixels is not None:
        n = len(pixels)
        for k, (u, v) in enumerate(pixels):
            c = _STEP_COLORS[min(len(_STEP_COLORS) - 1, k * len(_STEP_COLORS) // max(n, 1))]
            x, y = int(u * scale), int(v * scale)
            img[max(0, y - 1):y + 2, max(0, x - 1):x + 2] = c
    return np.clip(img, 0, 255).astype(np.uint8)


def result_row(protocol: str, method: str, result, paper: float | None) -> dict:
    """A success_table row for one RolloutResult."""
    return {"protocol": protocol, "method": method, "successes": result.successes, "episodes": len(result.episodes),
            "paper": paper}


def success_table(rows: list[dict], out_dir: Path, name: str = "results", grasps: list[tuple[str, str, list]] = (),
                  notes: str = "") -> tuple[Path, Path]:
    """rows: {method, protocol, successes, episodes, paper (optional %), seed_rates (optional, one
    success rate per seed: the table then shows their standard deviation)} -> results.md / results.csv;
    results.md goes on with the grasp_table of `grasps` and then `notes`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = ["| protocol | method | success | paper |", "|---|---|---|---|"]
    for r in rows:
        pct = 100 * r["successes"] / max(1, r["episodes"])
        spread = r.get("seed_rates") or []
        std = f" ± {100 * np.std(spread):.0f} over {len(spread)} seeds" if len(spread) > 1 else ""
        paper = f"{r['paper']:g}%" if r.get("paper") is not None else "—"
        md.append(f"| {r['protocol']} | {r['method']} | {pct:.0f}%{std} ({r['successes']}/{r['episodes']}) | {paper} |")
    (out_dir / f"{name}.md").write_text("\n".join(md) + "\n" + grasp_table(grasps) + notes)
    with open(out_dir / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["protocol", "method", "successes", "episodes", "success_rate", "seed_rates", "paper"])
        w.writeheader()
        for r in rows:
            w.writerow({**{k: r.get(k) for k in ("protocol", "method", "successes", "episodes", "paper")},
                        "success_rate": r["successes"] / max(1, r["episodes"]),
                        "seed_rates": " ".join(f"{x:.4f}" for x in r.get("seed_rates") or [])})
    return out_dir / f"{name}.md", out_dir / f"{name}.csv"


def grasp_table(groups: list[tuple[str, str, list]]) -> str:
    """(protocol, method, EpisodeResults) -> markdown telling "never grasped" failures from "grasped,
    then dropped or misplaced" ones; "" when the env did not track grasping."""
    rows = []
    for protocol, method, episodes in groups:
        tracked = [e for e in episodes if e.grasps is not None]
        if tracked:
            n, ok = len(tracked), sum(e.success for e in tracked)
            never = sum(not e.success and e.grasps == 0 for e in tracked)
            rows.append(f"| {protocol} | {method} | {ok}/{n} | {never}/{n} | {n - ok - never}/{n} | "
                        f"{np.mean([e.grasps for e in tracked]):.1f} |\n")
    if not rows:
        return ""
    return ("\nFailures by what the rollout reached (runs that recorded grasps):\n\n"
            "| protocol | method | success | failed, never grasped | failed after grasping | grasps per episode |\n"
            "|---|---|---|---|---|---|\n" + "".join(rows))


def write_json(path: Path, data) -> Path:
    """A results record (numpy scalars as plain numbers)."""
    path.write_text(json.dumps(data, indent=1, default=lambda o: o.item()))
    return path


def plot_protocol(results: dict, protocol: ProtocolConfig, out_dir: Path, name: str = "", split: str = "test") -> Path | None:
    """The paper's plot of `results` (method -> RolloutResult) on a protocol's `split`: success per viewpoint
    on a viewpoint grid (<name or 'viewpoints'>.png), else success against the distance from the nearest
    training position (<name or 'success_vs_distance'>.png; test split of grid scenes only, else None)."""
    train = specs(protocol, "train")
    if len(protocol.thetas) > 1:
        return plot_viewpoints(results, train, out_dir / f"{name or 'viewpoints'}.png")
    if split != "test" or protocol.train_init_states:      # init-state scenes: no grid to measure distance on
        return None
    return plot_success_vs_distance(results, train, out_dir / f"{name or 'success_vs_distance'}.png")


def plot_success_vs_distance(results: dict, train_specs: list[dict], path: Path, bins: int = 4) -> Path:
    """Success rate against the bowl's distance (m) from the nearest training position, per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    train_xy = np.array([s["bowl_xy"] for s in train_specs])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, res in results.items():
        d = np.array([np.min(np.linalg.norm(train_xy - e.spec["bowl_xy"], axis=1)) for e in res.episodes])
        ok = np.array([e.success for e in res.episodes], dtype=float)
        edges = np.linspace(0, d.max() + 1e-9, bins + 1)
        idx = np.clip(np.digitize(d, edges) - 1, 0, bins - 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        rate = [ok[idx == b].mean() * 100 if (idx == b).any() else np.nan for b in range(bins)]
        ax.plot(centres * 100, rate, "o-", label=method)
    ax.set_xlabel("distance from nearest training position (cm)")
    ax.set_ylabel("success (%)")
    ax.set_ylim(-5, 105)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_loss_curves(metrics: dict, path: Path) -> Path:
    """Training loss per method from each run's metrics.csv."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, csv_path in metrics.items():
        try:
            with open(csv_path) as f:
                rows = list(csv.DictReader(f))
            if not rows:
                raise ValueError("no logged steps")
            steps, losses = [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows]
        except (OSError, csv.Error, KeyError, ValueError, TypeError) as e:
            # a lost or damaged log costs its curve, not the report
            print(f"[report] no loss curve for {method}: {csv_path} is unreadable ({type(e).__name__}: {e})")
            continue
        ax.plot(steps, losses, label=method)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_viewpoints(results: dict, train_specs: list[dict], path: Path) -> Path:
    """Per-theta success per method (left) and a polar plot of the viewpoints (right): radius theta,
    angle phi; training viewpoints as crosses, test viewpoints coloured by the first method's success."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(9, 3.8))
    ax = fig.add_subplot(1, 2, 1)
    for method, res in results.items():
        per = theta_breakdown(res)
        ax.plot(list(per), [100 * s / n for s, n in per.values()], "o-", label=method)
    ax.set_xlabel("theta (deg)")
    ax.set_ylabel("success (%)")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    ax.legend()
    polar = fig.add_subplot(1, 2, 2, projection="polar")
    train = {(s.get("theta", 0.0), s.get("phi", 0.0)) for s in train_specs}
    polar.scatter([np.radians(f) for _, f in train], [t for t, _ in train], marker="x", c="k", label="train")
    if results:
        views: dict = {}
        for e in next(iter(results.values())).episodes:
            views.setdefault((e.spec.get("theta", 0.0), e.spec.get("phi", 0.0)), []).append(e.success)
        sc = polar.scatter([np.radians(f) for _, f in views], [t for t, _ in views], c=[100 * np.mean(v) for v in views.values()],
                           cmap="RdYlGn", vmin=0, vmax=100, label=f"test ({next(iter(results))})")
        fig.colorbar(sc, ax=polar, label="success (%)", shrink=0.8)
    polar.legend(loc="lower left", fontsize=7, bbox_to_anchor=(-0.25, -0.15))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def theta_breakdown(result) -> dict:
    """theta -> (successes, episodes), sorted by theta."""
    per: dict = {}
    for e in result.episodes:
        s, n = per.get(e.spec.get("theta", 0.0), (0, 0))
        per[e.spec.get("theta", 0.0)] = (s + e.success, n + 1)
    return dict(sorted(per.items()))
