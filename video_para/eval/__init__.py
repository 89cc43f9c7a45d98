"""Evaluation: rollouts of any policy in any env on a protocol's scenes (video_para.scenes), reports."""
