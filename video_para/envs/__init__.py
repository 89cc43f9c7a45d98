"""Environments behind one small interface (see base.py): built-in tabletop, LIBERO, SO-100."""
from .base import ENVS, Env, EnvConfig, Observation  # noqa: F401
from . import tabletop  # noqa: F401  (register)
from . import libero  # noqa: F401  (register; LIBERO itself is imported by the builder)
from . import so100  # noqa: F401  (register; mujoco is imported by the builder)
