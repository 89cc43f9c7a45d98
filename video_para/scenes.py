"""The scene catalogue: OOD protocols as configs, which scene specs train and which test. Data (demos),
envs, training (periodic eval), eval and so100 all read it, so it depends on nothing of theirs.

A protocol is a YAML file under configs/protocol/ (or any path) mapped to `ProtocolConfig`. Specs are
generated from grid selections, never listed by hand:
  * position grid: bowl positions on a rows x cols grid over x_range (depth, metres) x y_range
    (lateral; column 0 is the image's left side); selections `all | left | right | near | far |
    corners | dense` (`near`/`far`: the rows at the start/end of x_range, i.e. nearer/farther from
    the camera, x being depth; `corners`: the n_corner cells nearest the four corners, the paper's
    sparse N=32 coverage; `dense`: every other cell, the paper's N=64);
  * viewpoints: (theta, phi) offsets of the camera; thetas x phis, a viewpoint trains when its theta
    is <= train_theta_max and (if train_phis is set) its azimuth is in train_phis; the rest test;
  * distractors: number of clutter objects in training and in test scenes; val_distractors puts clutter
    of a *validation set* (spec['distractor_set'] = 'val': objects that look unlike the test clutter, so
    choosing on them never sees the test clutter) in the validation scenes, to choose variants for a
    clean-train / cluttered-test protocol on cluttered scenes;
  * appearance: env settings of the scene's look (spec['appearance'], e.g. table colour, background,
    light for the built-in scene) given to every training / test scene; empty: the env's default;
  * holdout: a validation split carved from the training cells (they leave 'train' and form 'val'),
    to choose between variants without looking at the test region: `boundary` = the holdout_width
    layers of training cells nearest the test cells (an extrapolation inside the training region,
    e.g. the left half's two columns next to the right half), `stride` = every holdout_stride-th
    training cell (protocols whose test scenes share the training cells and differ in clutter, look
    or view). Reported runs train with holdout none;
  * init states: train_init_states / test_init_states list the env's own initial scenes (LIBERO's init
    states, spec['init_state']) to use instead of grid cells, e.g. to train and test on the task's own
    layout; views and appearance still apply, grid keys (bowl_xy, cell) are absent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import CONFIG_ROOT, load_config

SELECTIONS = ("all", "left", "right", "near", "far", "corners", "dense")
HOLDOUTS = ("none", "boundary", "stride")
SPLITS = ("train", "val", "test")


@dataclass
class ProtocolConfig:
    name: str = "left_right"
    rows: int = 16                       # grid cells along depth (x)
    cols: int = 16                       # grid cells along the lateral axis (y)
    x_range: list[float] = field(default_factory=lambda: [-0.2, 0.19])     # 39 cm
    y_range: list[float] = field(default_factory=lambda: [0.3, -0.3])      # 60 cm, image left -> right
    train: str = "left"
    test: str = "right"
    n_corner: int = 32
    thetas: list[float] = field(default_factory=lambda: [0.0])             # viewpoint offsets (deg)
    phis: list[float] = field(default_factory=lambda: [0.0])
    train_theta_max: float = 90.0       # viewpoints with theta <= this train, the rest test
    train_phis: list[float] = field(default_factory=list)   # and, if set, only these azimuths train
    demos_per_cell: int = 1
    train_distractors: int = 0          # clutter objects per scene (paper: clean train, cluttered test)
    test_distractors: int = 0
    val_distractors: int = 0            # validation-set clutter per validation scene (spec distractor_set 'val')
    val_layouts: int = 1                # validation scenes per held-out cell, each its own clutter layout
    train_appearance: dict = field(default_factory=dict)   # spec['appearance'] of training scenes
    test_appearance: dict = field(default_factory=dict)    # and of test scenes (paper: new environment)
    train_init_states: list[int] = field(default_factory=list)   # the env's own initial scenes instead of
    test_init_states: list[int] = field(default_factory=list)    # grid cells (LIBERO init state indices)
    holdout: str = "none"                # validation split carved from the training cells: none | boundary | stride
    holdout_width: int = 1               # boundary: layers of cells (by grid distance to the test cells)
    holdout_stride: int = 4              # stride: every k-th training cell
    paper: dict = field(default_factory=dict)   # the paper's numbers for the report, e.g. {para: 54}

    def validate(self) -> None:
        for s in (self.train, self.test):
            if s not in SELECTIONS:
                raise ValueError(f"protocol '{self.name}': selection '{s}' not in {SELECTIONS}")
        if self.rows < 2 or self.cols < 2:
            raise ValueError(f"protocol '{self.name}': the grid needs at least 2x2 cells")
        if not set(self.train_phis) <= set(self.phis):
            raise ValueError(f"protocol '{self.name}': train_phis {self.train_phis} not all in phis {self.phis}")
        if self.holdout not in HOLDOUTS:
            raise ValueError(f"protocol '{self.name}': holdout '{self.holdout}' not in {HOLDOUTS}")
        if self.holdout_width < 1:
            raise ValueError(f"protocol '{self.name}': holdout_width must be >= 1, got {self.holdout_width}")
        if self.holdout_stride < 2:
            raise ValueError(f"protocol '{self.name}': holdout_stride must be >= 2, got {self.holdout_stride}")
        if bool(self.train_init_states) != bool(self.test_init_states):
            raise ValueError(f"protocol '{self.name}': train_init_states and test_init_states go together")
        if self.val_layouts < 1 or (self.val_layouts > 1 and not self.val_distractors):
            raise ValueError(f"protocol '{self.name}': val_layouts > 1 repeats a held-out cell with other clutter: "
                             f"it needs val_distractors (got val_layouts={self.val_layouts})")
        if self.val_distractors and self.holdout == "none":
            raise ValueError(f"protocol '{self.name}': val_distractors needs a validation split (holdout)")
        if self.train_init_states and (self.holdout != "none" or self.train_distractors or self.test_distractors):
            raise ValueError(f"protocol '{self.name}': init states are whole scenes: no holdout or distractors")


def load_protocol(name_or_path: str, overrides: list[str] | None = None) -> ProtocolConfig:
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_ROOT / "protocol" / f"{name_or_path}.yaml"
    return load_config(ProtocolConfig, [f"config={path}", *(overrides or [])])


def _cells(p: ProtocolConfig, selection: str) -> list[tuple[int, int]]:
    all_cells = [(r, c) for r in range(p.rows) for c in range(p.cols)]
    if selection == "all":
        return all_cells
    if selection == "left":
        return [(r, c) for r, c in all_cells if c < p.cols // 2]
    if selection == "right":
        return [(r, c) for r, c in all_cells if c >= p.cols // 2]
    if selection == "near":
        return [(r, c) for r, c in all_cells if r < p.rows // 2]
    if selection == "far":
        return [(r, c) for r, c in all_cells if r >= p.rows // 2]
    if selection == "dense":
        return [(r, c) for r, c in all_cells if (r + c) % 2 == 0]
    corners = np.array([[0, 0], [0, p.cols - 1], [p.rows - 1, 0], [p.rows - 1, p.cols - 1]])
    dist = [min(np.abs(np.array(rc) - corners).sum(1)) for rc in all_cells]
    order = np.argsort(dist, kind="stable")[: p.n_corner]
    return [all_cells[i] for i in sorted(order)]


def _split_cells(p: ProtocolConfig, split: str) -> list[tuple[int, int]]:
    """Cells of a split: the test selection, or the training selection minus / restricted to the holdout."""
    if split == "test":
        return _cells(p, p.test)
    train = _cells(p, p.train)
    if p.holdout == "none":
        if split == "val":
            raise ValueError(f"protocol '{p.name}' has no validation split: set holdout=boundary or holdout=stride")
        return train
    if p.holdout == "stride":
        val = set(train[p.holdout_stride - 1::p.holdout_stride])
    else:
        test = np.array(_cells(p, p.test))
        dist = np.array([np.abs(test - rc).sum(1).min() for rc in train])
        if dist.min() == 0:
            raise ValueError(f"protocol '{p.name}': training and test cells overlap, so there is no boundary; "
                             "use holdout=stride")
        val = {rc for rc, d in zip(train, dist) if d < dist.min() + p.holdout_width}
    return [rc for rc in train if (rc in val) == (split == "val")]


def cell_xy(p: ProtocolConfig, r: int, c: int) -> list[float]:
    return [float(np.interp(r, [0, p.rows - 1], p.x_range)), float(np.interp(c, [0, p.cols - 1], p.y_range))]


def specs(p: ProtocolConfig, split: str) -> list[dict]:
    """Scene specs of a split ('train', 'val' = the holdout carved from the training cells, or 'test');
    each carries its grid cell (or init state) and viewpoint. Validation scenes look like training scenes
    (views, clutter, appearance) unless val_distractors gives them validation-set clutter."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
    if p.train_init_states:
        if split == "val":
            raise ValueError(f"protocol '{p.name}' lists init states: it has no validation split")
        places = p.test_init_states if split == "test" else p.train_init_states
    else:
        places = _split_cells(p, split)
    training_like = split != "test"
    views = [(t, f) for t in p.thetas for f in (p.phis if t > 0 else p.phis[:1])]
    multi_view = len(views) > 1
    if multi_view:
        trains = [t <= p.train_theta_max and (not p.train_phis or f in p.train_phis) for t, f in views]
        views = [v for v, is_train in zip(views, trains) if is_train == training_like]
    rng = np.random.default_rng({"train": 0, "test": 1, "val": 2}[split])
    appearance = p.train_appearance if training_like else p.test_appearance
    out = []
    for theta, phi in views:
        for place in places:
            for k in range({"train": p.demos_per_cell, "val": p.val_layouts, "test": 1}[split]):
                spec = {"init_state": place} if p.train_init_states else {"bowl_xy": cell_xy(p, *place), "cell": list(place)}
                spec.update(theta=theta, phi=phi)
                n_clutter = {"train": p.train_distractors, "test": p.test_distractors,
                             "val": p.val_distractors or p.train_distractors}[split]
                if n_clutter:
                    spec["distractors"] = _distractors(n_clutter, p, spec["bowl_xy"], rng)
                    if split == "val" and p.val_distractors:
                        spec["distractor_set"] = "val"
                if appearance:
                    spec["appearance"] = dict(appearance)
                out.append(spec)
    return out


def _distractors(n: int, p: ProtocolConfig, bowl_xy, rng) -> list[list[float]]:
    """n clutter objects placed on the grid area, away from the bowl and from each other."""
    out = []
    while len(out) < n:
        xy = [rng.uniform(*sorted(p.x_range)), rng.uniform(*sorted(p.y_range))]
        if np.hypot(xy[0] - bowl_xy[0], xy[1] - bowl_xy[1]) > 0.1 and all(np.hypot(xy[0] - o[0], xy[1] - o[1]) > 0.07 for o in out):
            out.append([float(v) for v in xy])
    return out
