"""Imports point one way: a part of video_para imports only parts in the layers below its own (lazy
imports inside functions count too), so data and envs, training and eval, envs and the SO-100 CLIs
never import each other in a circle."""
import ast
from pathlib import Path

import video_para

LAYERS = [{"quickstart", "bench"}, {"so100"}, {"suite"}, {"training"}, {"eval"}, {"experiment"}, {"data"},
          {"envs"}, {"robots", "models"}, {"episodes", "scenes"}, {"geometry", "config", "progress"}]
ROOT = Path(video_para.__file__).parent


def imported_parts(path: Path) -> set[str]:
    """The top-level parts of video_para (subpackage or module) that the file imports."""
    package = path.relative_to(ROOT.parent).with_suffix("").parts[:-1]
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = [*package[: len(package) - node.level + 1], *(node.module or "").split(".")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("video_para."):
            target = node.module.split(".")
        else:
            continue
        if len(target) > 1 and target[1]:
            parts.add(target[1])
    return parts


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()} - {"__init__"}
    assert parts == set().union(*LAYERS)


def test_imports_point_down_the_layers():
    layer = {part: i for i, parts in enumerate(LAYERS) for part in parts}
    upward = []
    for path in ROOT.rglob("*.py"):
        own = path.relative_to(ROOT).with_suffix("").parts[0]
        upward += [f"{path.relative_to(ROOT)} imports {part}" for part in imported_parts(path)
                   if part != own and layer[part] <= layer[own]]
    assert not upward, upward
