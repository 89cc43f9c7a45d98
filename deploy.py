"""`python deploy.py policy=DIR [robot=so100_sim|so100_follower] [key=value ...]`: run a saved policy on an
SO-100/SO-101 (simulated or real) through the safety-checked IK loop; see video_para/so100/deploy.py."""
from video_para.so100.deploy import main

if __name__ == "__main__":
    main()
