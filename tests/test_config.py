from dataclasses import dataclass, field

import pytest

from video_para.config import load_config, to_dict, to_yaml, from_dict


@dataclass
class Inner:
    lr: float = 1e-4
    steps: int = 10


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    sizes: list[int] = field(default_factory=lambda: [1, 2])


def test_yaml_defaults_and_overrides(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "fast.yaml").write_text("lr: 0.01\nsteps: 3\n")
    (tmp_path / "experiment" / "e.yaml").write_text("defaults:\n  - inner: inner/fast\nname: e\ninner:\n  steps: 5\n")
    cfg = load_config(Outer, ["experiment=e", "inner.lr=2e-3", "sizes=[4,5,6]"], root=tmp_path)
    assert cfg == Outer("e", Inner(2e-3, 5), [4, 5, 6])
    assert from_dict(Outer, to_dict(cfg)) == cfg
    assert "lr: 0.002" in to_yaml(cfg)
    cfg2 = load_config(Outer, ["inner=@inner/fast"], root=tmp_path)
    assert cfg2.inner == Inner(0.01, 3)


def test_typos_and_bad_types_are_errors(tmp_path):
    with pytest.raises(ValueError, match="stesp"):
        load_config(Outer, ["inner.stesp=3"], root=tmp_path)
    with pytest.raises(ValueError, match="steps"):
        load_config(Outer, ["inner.steps=many"], root=tmp_path)
    with pytest.raises(ValueError, match="key=value"):
        load_config(Outer, ["inner.steps"], root=tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(Outer, ["experiment=nope"], root=tmp_path)


def test_experiment_validation_covers_data_size_and_env():
    from video_para.experiment import ExperimentConfig
    with pytest.raises(ValueError, match="data.image_size"):
        load_config(ExperimentConfig, ["experiment=tiny_para", "data.image_size=[64,64]"])
    assert load_config(ExperimentConfig, ["experiment=tiny_para", "data.image_size=[128,128]"]).data.image_size == [128, 128]
    with pytest.raises(ValueError, match="env.grid_center"):
        load_config(ExperimentConfig, ["experiment=tiny_para", "env=@env/libero", "env.grid_center=[0.1]"])
