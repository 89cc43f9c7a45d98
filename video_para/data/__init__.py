"""Data: episodes (schema + validation), LeRobot v3 datasets, video decoding, training windows."""
from .episodes import CameraTrack, Episode, EpisodeError  # noqa: F401
