"""The SO-100/SO-101 arm: MuJoCo kinematics, the safety-checked IK command, LeRobot motor mapping. The sim
env (envs/so100.py) and the real-arm CLIs (video_para.so100) drive it through the same code."""
