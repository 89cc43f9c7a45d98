"""Random-access video decoding behind one small interface, and lazy frame arrays built on it.

`open_video(path, backend="auto").frames(indices) -> (N, H, W, 3) uint8` decodes only the requested
frames: each backend seeks to the keyframe at or before a frame and decodes forward from there
(a run of nearby indices shares one seek). Backends:
  torchcodec  default when it imports and loads its FFmpeg libraries (CPU wheels need the system
              FFmpeg: `apt-get install ffmpeg`); pinned to the release built for our torch.
  pyav        always available (bundled FFmpeg); exact frame index from a packet scan at open.
  decord      optional (unmaintained; bundled FFmpeg).
Any decoder failure (missing, corrupt or truncated file) raises VideoError naming the file;
callers add the episode.

`VideoFrames` is a lazy (T, H, W, 3) uint8 array over frames [lo, hi) of a file: indexing decodes
those frames only. Decoders are cached per process (keyed by pid), so a dataset pickled into
DataLoader workers opens its own decoders there instead of sharing a file position across fork.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

BACKENDS = ("torchcodec", "pyav", "decord")


class VideoError(RuntimeError):
    """A video cannot be opened or decoded; the message names the file."""


class VideoReader:
    """Base: subclasses set path, num_frames, fps, height, width and implement _decode(sorted unique)."""
    backend = ""
    path: Path
    num_frames: int
    fps: float
    height: int
    width: int

    def frames(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = idx[(idx < 0) | (idx >= self.num_frames)]
        if bad.size:
            raise VideoError(f"{self.path}: frame {int(bad[0])} requested, the file has {self.num_frames} "
                             f"frames (truncated?)")
        if not idx.size:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        uniq, inverse = np.unique(idx, return_inverse=True)
        try:
            out = self._decode(uniq.tolist())
        except VideoError:
            raise
        except Exception as exc:                           # every backend has its own error types
            raise VideoError(f"{self.path}: {self.backend} cannot decode frames "
                             f"{uniq.min()}..{uniq.max()}: {exc}") from exc
        return out[inverse]

    def frames_at(self, seconds) -> np.ndarray:
        """Frames at timestamps (s from the start of the file), nearest frame index at the file's fps."""
        return self.frames(np.rint(np.asarray(seconds, dtype=np.float64) * self.fps).astype(np.int64))

    def _decode(self, indices: list[int]) -> np.ndarray:
        raise NotImplementedError


class TorchcodecReader(VideoReader):
    backend = "torchcodec"

    def __init__(self, path: Path):
        from torchcodec.decoders import VideoDecoder
        self.path = path
        self._dec = VideoDecoder(str(path), dimension_order="NHWC", seek_mode="exact")
        m = self._dec.metadata
        self.num_frames, self.fps, self.height, self.width = len(self._dec), float(m.average_fps), m.height, m.width

    def _decode(self, indices):
        return self._dec.get_frames_at(indices).data.numpy()


class PyAVReader(VideoReader):
    """Frame i is the i-th packet in presentation order (a packet scan at open reads no pixels)."""
    backend = "pyav"

    def __init__(self, path: Path):
        import av
        self.path = path
        self._av = av
        self._box = av.open(str(path))
        self._stream = self._box.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in self._box.demux(self._stream) if p.pts is not None]
        packets.sort()
        self._pts = np.array([p for p, _ in packets], dtype=np.int64)
        self._key_pts = np.array([p for p, k in packets if k], dtype=np.int64)
        self.num_frames = len(self._pts)
        self.fps = float(self._stream.average_rate or 0)
        self.height, self.width = self._stream.codec_context.height, self._stream.codec_context.width
        self._iter, self._last = None, None               # live decoder position between calls

    def _decode(self, indices):
        out = []
        for i in indices:
            target = int(self._pts[i])
            key = int(self._key_pts[np.searchsorted(self._key_pts, target, side="right") - 1])
            # seek unless we are already before `target` in the same GOP (then decoding on is cheaper)
            if self._iter is None or self._last is None or self._last >= target or self._last < key:
                self._box.seek(target, stream=self._stream, backward=True, any_frame=False)
                self._iter, self._last = self._box.decode(self._stream), None
            for frame in self._iter:
                self._last = frame.pts
                if frame.pts >= target:
                    break
            else:
                raise VideoError(f"{self.path}: stream ended before frame {i} (truncated?)")
            if self._last != target:
                raise VideoError(f"{self.path}: frame {i} (pts {target}) not found after seeking "
                                 f"(got pts {self._last})")
            out.append(frame.to_ndarray(format="rgb24"))
        return np.stack(out)


class DecordReader(VideoReader):
    backend = "decord"

    def __init__(self, path: Path):
        import decord
        self.path = path
        self._vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        self.num_frames, self.fps = len(self._vr), float(self._vr.get_avg_fps())
        self.height, self.width = self._vr[0].shape[:2] if self.num_frames else (0, 0)

    def _decode(self, indices):
        return self._vr.get_batch(indices).asnumpy()


_READERS = {"torchcodec": TorchcodecReader, "pyav": PyAVReader, "decord": DecordReader}


@functools.cache
def backend_status() -> dict[str, str]:
    """backend -> '' when usable here, else why not (an import that fails, e.g. no system FFmpeg)."""
    status = {}
    for name, module in (("torchcodec", "torchcodec.decoders"), ("pyav", "av"), ("decord", "decord")):
        try:
            __import__(module)
            status[name] = ""
        except Exception as exc:                           # ImportError, or RuntimeError loading FFmpeg libs
            status[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return status


def resolve_backend(backend: str = "auto") -> str:
    status = backend_status()
    if backend == "auto":
        return next(b for b in BACKENDS if not status[b])   # pyav is a core dependency
    if backend not in BACKENDS:
        raise ValueError(f"video backend must be 'auto' or one of {BACKENDS}, got '{backend}'")
    if status[backend]:
        raise VideoError(f"video backend '{backend}' is not usable here: {status[backend]}")
    return backend


def open_video(path, backend: str = "auto") -> VideoReader:
    path = Path(path)
    name = resolve_backend(backend)
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    try:
        return _READERS[name](path)
    except Exception as exc:
        raise VideoError(f"{path}: {name} cannot open it ({type(exc).__name__}: {exc})") from exc


@functools.lru_cache(maxsize=16)
def _cached_reader(path: Path, backend: str, pid: int) -> VideoReader:
    return open_video(path, backend)


class VideoFrames:
    """Lazy (T, H, W, 3) uint8 frames [lo, hi) of a video file; `frames[idx]` decodes only idx."""
    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, path, lo: int, hi: int, height: int, width: int, backend: str = "auto", where: str = ""):
        self.path, self.lo, self.hi, self.backend = Path(path), int(lo), int(hi), resolve_backend(backend)
        self.where = where                                 # e.g. "<dataset>: episode 3": prefixes decode errors
        self.shape = (self.hi - self.lo, int(height), int(width), 3)

    def verify(self) -> "VideoFrames":
        """Open the file (headers and packet index only) and check it holds frames [lo, hi) of the
        promised size, so a truncated or resized video fails at load, not when a batch reaches it."""
        r = self.reader()
        if r.num_frames < self.hi:
            raise VideoError(f"{self.path}: has {r.num_frames} frames, frames {self.lo}..{self.hi - 1} are needed "
                             "(truncated?)")
        if (r.height, r.width) != self.shape[1:3]:
            raise VideoError(f"{self.path}: frames are {r.width}x{r.height}, the metadata says "
                             f"{self.shape[2]}x{self.shape[1]}")
        return self

    def __len__(self) -> int:
        return self.shape[0]

    def reader(self) -> VideoReader:
        return _cached_reader(self.path, self.backend, os.getpid())

    def __getitem__(self, key) -> np.ndarray:
        idx = np.arange(len(self))[key]
        try:
            out = self.reader().frames(self.lo + np.atleast_1d(idx))
        except VideoError as exc:
            if not self.where:
                raise
            raise VideoError(f"{self.where}: {exc}") from exc
        return out[0] if np.ndim(idx) == 0 else out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)
