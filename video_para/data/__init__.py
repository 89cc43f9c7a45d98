"""Data: episode sources (LeRobot v3 datasets, LIBERO hdf5, scripted demos in a sim env), video
decoding, training windows. Episodes themselves (video_para.episodes) sit below data and envs alike."""
