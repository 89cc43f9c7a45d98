"""Random-access decoding: every usable backend returns the frames a full sequential decode gives."""
import copy

import av
import numpy as np
import pytest
import torch

from video_para.data import video
from video_para.data.video import BACKENDS, VideoError, VideoFrames, backend_status, open_video

T, H, W = 40, 48, 64


def write_mp4(path, gop: int, faststart: bool = False):
    """Frame t: grey level 6t with a white bar 2t px wide, so a wrong frame is far outside codec error."""
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"g": str(gop), "crf": "18"}          # long GOP with B-frames: seeking must decode forward
        for t in range(T):
            img = np.full((H, W, 3), 6 * t, np.uint8)
            img[:, : 2 * t] = 255
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode())
    return path


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    path = write_mp4(tmp_path_factory.mktemp("video") / "clip.mp4", gop=12)
    with av.open(str(path)) as f:
        full = np.stack([fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)])
    return path, full


def usable(backend):
    reason = backend_status()[backend]
    if reason:
        pytest.skip(f"video backend {backend} not usable here: {reason}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_access_matches_sequential_decode(mp4, backend):
    usable(backend)
    path, full = mp4
    r = open_video(path, backend)
    assert (r.num_frames, r.height, r.width, r.fps) == (T, H, W, 10.0)
    for seed in range(3):                                  # unsorted, repeated, backwards jumps
        idx = np.random.default_rng(seed).integers(0, T, 15)
        got = r.frames(idx)
        assert got.shape == (15, H, W, 3) and got.dtype == np.uint8
        err = np.abs(got.astype(int) - full[idx].astype(int))
        assert err.mean() < 1.0 and err.max() <= 8, (backend, idx)   # adjacent frames differ by >= 6 everywhere
    np.testing.assert_array_equal(r.frames_at([0.0, 1.3, 3.9]), r.frames([0, 13, 39]))
    assert r.frames([]).shape == (0, H, W, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_corrupt_and_truncated_files_name_the_file(mp4, backend, tmp_path):
    usable(backend)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 64)
    with pytest.raises(VideoError, match=r"junk\.mp4"):
        open_video(junk, backend).frames([0])
    data = write_mp4(tmp_path / "full.mp4", gop=12, faststart=True).read_bytes()
    cut = tmp_path / "cut.mp4"                             # index up front, half the frames' data missing
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"cut\.mp4"):
        open_video(cut, backend).frames([T - 1])
    with pytest.raises(VideoError, match=r"missing\.mp4: no such video file"):
        open_video(tmp_path / "missing.mp4", backend)


def test_backend_choice(monkeypatch):
    assert video.resolve_backend("auto") == next(b for b in BACKENDS if not backend_status()[b])
    with pytest.raises(ValueError, match="one of"):
        video.resolve_backend("ffmpeg-cli")
    monkeypatch.setattr(video, "backend_status", lambda: {"torchcodec": "RuntimeError: no libavutil",
                                                          "pyav": "", "decord": "ImportError: x"})
    assert video.resolve_backend("auto") == "pyav"
    with pytest.raises(VideoError, match="torchcodec.*no libavutil"):
        video.resolve_backend("torchcodec")


def test_lazy_frames_decode_only_what_is_indexed_and_copy_without_decoder(mp4):
    path, full = mp4
    frames = VideoFrames(path, 10, 30, H, W, backend="pyav")
    assert frames.shape == (20, H, W, 3) and len(frames) == 20
    np.testing.assert_array_equal(frames[3], open_video(path, "pyav").frames([13])[0])
    np.testing.assert_array_equal(frames[[0, 19]], open_video(path, "pyav").frames([10, 29]))
    frames.reader()                                        # a cached decoder must not travel to workers
    clone = copy.deepcopy(frames)                          # the same state protocol spawned workers use
    np.testing.assert_array_equal(np.asarray(clone), np.asarray(frames))
    assert np.asarray(clone).shape == (20, H, W, 3)


_FORKED = {}


def _child_reader_is_new() -> tuple[bool, int]:
    torch.set_num_threads(1)      # as DataLoader workers do: OpenMP's pool does not survive a fork
    frames, parent_reader = _FORKED["frames"], _FORKED["reader"]
    return frames.reader() is not parent_reader, int(frames[5].mean())


def test_forked_worker_opens_its_own_decoder(mp4):
    """A decoder used before DataLoader workers fork must not be reused in them (a shared file position
    corrupts reads: LeRobot 0.6.1's torchcodec cache fails that way, see tools/compat/lerobot_side.py)."""
    import multiprocessing
    path, full = mp4
    frames = VideoFrames(path, 0, T, H, W)
    _FORKED.update(frames=frames, reader=frames.reader())
    with multiprocessing.get_context("fork").Pool(1) as pool:
        new, mean = pool.apply_async(_child_reader_is_new).get(timeout=120)   # a hung worker fails, not stalls
    assert new and mean == int(frames[5].mean())
    assert frames.reader() is _FORKED["reader"]                  # same process: the cached decoder
