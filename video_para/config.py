"""Typed configs: dataclasses filled from YAML files and `key=value` command-line overrides.

* A config schema is a dataclass. Fields typed with a registered *choice* base (e.g. the backbone
  config) are resolved by their `type` key to the dataclass registered under that name, so
  `policy.backbone.type=dino policy.backbone.model_id=...` type-checks against the DINO config.
* Unknown keys and wrong types are errors (OmegaConf struct mode), never silently ignored.
* A YAML file may start with `defaults:` — a list of other files (relative to the config root,
  without `.yaml`), each either merged at the root (`- data/tabletop_left`) or at a key
  (`- policy.backbone: backbone/tiny`). The file's own keys override its defaults.
* Command line: `experiment=NAME` loads configs/experiment/NAME.yaml, `config=PATH` any file,
  `key=@group/name` loads a file at that key, and `key=value` sets a field (value parsed as YAML).
"""
from __future__ import annotations

import dataclasses
import textwrap
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")
CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"


class Registry:
    """Name -> (config dataclass, builder). One per axis: backbones, heads, envs."""

    _by_base: dict[type, "Registry"] = {}

    def __init__(self, kind: str, base_config: type):
        self.kind, self.base = kind, base_config
        self._entries: dict[str, tuple[type, Callable]] = {}
        Registry._by_base[base_config] = self

    def register(self, name: str, config_cls: type) -> Callable:
        if not issubclass(config_cls, self.base):
            raise TypeError(f"{config_cls.__name__} must subclass {self.base.__name__}")

        def deco(builder):
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._entries[name] = (config_cls, builder)
            return builder
        return deco

    def names(self) -> list[str]:
        return sorted(self._entries)

    def _entry(self, name: str):
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} type '{name}'; choose one of {self.names()}")
        return self._entries[name]

    def config_class(self, name: str) -> type:
        return self._entry(name)[0]

    def build(self, config, *args, **kwargs):
        return self._entry(config.type)[1](config, *args, **kwargs)


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _default_instance(cls, raw: Any):
    """Instantiate schema `cls`, choosing registered subclasses for choice fields from `raw`."""
    if cls in Registry._by_base:
        name = raw.get("type") if isinstance(raw, (dict, DictConfig)) else None
        if name is None:
            name = getattr(cls(), "type", None)
        cls = Registry._by_base[cls].config_class(name)
    kwargs = {}
    for name, ftype in _field_types(cls).items():
        if dataclasses.is_dataclass(ftype):
            sub = raw.get(name) if isinstance(raw, (dict, DictConfig)) else None
            kwargs[name] = _default_instance(ftype, sub if sub is not None else {})
    return cls(**kwargs)


def _load_yaml(path: Path, root: Path) -> DictConfig:
    if not path.exists():
        raise FileNotFoundError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    merged = OmegaConf.create({})
    for entry in data.pop("defaults", []) or []:
        if isinstance(entry, str):
            merged = OmegaConf.merge(merged, _load_yaml(root / f"{entry}.yaml", root))
        elif isinstance(entry, dict) and len(entry) == 1:
            (key, name), = entry.items()    # replaces that subtree (a new head drops the old head's keys)
            OmegaConf.update(merged, key, _load_yaml(root / f"{name}.yaml", root), merge=False)
        else:
            raise ValueError(f"{path}: bad defaults entry {entry!r}")
    return OmegaConf.merge(merged, OmegaConf.create(data))


def _raw_from_args(args: list[str], root: Path, base: dict | None = None) -> DictConfig:
    raw = OmegaConf.create(base or {})
    for arg in args:
        if "=" not in arg:
            raise ValueError(f"expected key=value, got '{arg}'")
        key, value = arg.split("=", 1)
        if key == "experiment":
            if not (root / "experiment" / f"{value}.yaml").exists():
                raise FileNotFoundError(f"experiment={value}: no {root / 'experiment' / value}.yaml; presets: "
                                        f"{', '.join(presets(root))}")
            raw = OmegaConf.merge(raw, _load_yaml(root / "experiment" / f"{value}.yaml", root))
        elif key == "config":
            raw = OmegaConf.merge(raw, _load_yaml(Path(value), root))
        elif value.startswith("@"):
            OmegaConf.update(raw, key, _load_yaml(root / f"{value[1:]}.yaml", root), merge=False)
        else:
            OmegaConf.update(raw, key, yaml.safe_load(value) if value else "", merge=True)
    return raw


def presets(root: Path | None = None, group: str = "experiment") -> list[str]:
    """The names of configs/<group>/*.yaml (e.g. the experiment presets)."""
    return sorted(p.stem for p in Path(root or CONFIG_ROOT, group).glob("*.yaml"))


def groups_text(root: Path | None = None) -> str:
    """The experiment presets and config groups, for the --help of every entry point."""
    root = Path(root or CONFIG_ROOT)
    groups = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "experiment")
    return "\n".join(["experiment presets (experiment=NAME loads configs/experiment/NAME.yaml):",
                      textwrap.fill(", ".join(presets(root)), 110, initial_indent="  ", subsequent_indent="  "),
                      "config groups (KEY=@GROUP/NAME loads configs/GROUP/NAME.yaml at KEY, e.g. "
                      "policy.backbone=@backbone/tiny):",
                      *(textwrap.fill(f"{g}: {', '.join(presets(root, g))}", 110, initial_indent="  ",
                                      subsequent_indent="    ") for g in groups)])


def exit_if_help(argv: list[str], usage: str, doc: str, schema: type | None = None) -> None:
    """-h/--help on a key=value entry point: print usage, its docstring, the schema's top-level keys with
    their defaults, the presets and config groups, and exit 0 before anything is built or written."""
    if not any(a in ("-h", "--help") for a in argv):
        return
    text = [f"usage: {usage}", "", textwrap.dedent(doc or "").strip(), ""]
    if schema is not None:
        text.append("keys (key=value, values parsed as YAML; nested: a.b=value; unknown keys are errors):")
        for f in dataclasses.fields(instance := _default_instance(schema, {})):
            value = getattr(instance, f.name)
            shown = f"{type(value).__name__} (set {f.name}.<field>=...)" if dataclasses.is_dataclass(value) else repr(value)
            text.append(f"  {f.name} = {shown}")
        text.append("")
    print("\n".join(text + [groups_text()]))
    raise SystemExit(0)


def _open_plain_dicts(node: DictConfig) -> None:
    """Dataclass nodes stay closed (typos are errors); plain `dict` fields accept any key."""
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            if child._metadata.object_type in (None, dict):
                OmegaConf.set_struct(child, False)
            else:
                _open_plain_dicts(child)


def from_dict(schema: type[T], raw: Any) -> T:
    """Build a typed config from a mapping; unknown keys and bad types raise."""
    raw = OmegaConf.create(raw) if not isinstance(raw, DictConfig) else raw
    base = OmegaConf.structured(_default_instance(schema, raw))
    OmegaConf.set_struct(base, True)
    _open_plain_dicts(base)
    try:
        cfg = OmegaConf.to_object(OmegaConf.merge(base, raw))
    except Exception as e:  # omegaconf's first line says what is wrong; its full_key says where
        what = str(getattr(e, "msg", None) or e).splitlines()[0]
        key = getattr(e, "full_key", None)
        raise ValueError(f"invalid config: {key + ': ' if key else ''}{what}") from None
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def load_config(schema: type[T], args: list[str] | None = None, root: Path | None = None, base: dict | None = None) -> T:
    """Parse `experiment=... config=... key=value` arguments, applied over the mapping `base` (e.g. a
    saved run's config), into a validated `schema` instance."""
    return from_dict(schema, _raw_from_args(list(args or []), Path(root or CONFIG_ROOT), base))


def to_dict(cfg) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def to_yaml(cfg) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
