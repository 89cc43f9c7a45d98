"""Robots below envs and the deploy CLIs: the SO-100/SO-101 arm model (kinematics, safety, motor mapping)."""
