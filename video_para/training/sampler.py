"""A shuffling batch sampler whose order is a pure function of (seed, epoch) and which can start
mid-epoch — what exact resume needs. It yields (index, augmentation seed) keys, so augmentations are
a function of (seed, epoch, index) too: the global RNG, which loader prefetching and worker
processes consume unpredictably, plays no part."""
from __future__ import annotations

import torch
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler):
    def __init__(self, n_items: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n_items, batch_size, seed
        self.epoch, self.start = 0, 0

    def set_position(self, epoch: int, start_batch: int) -> None:
        self.epoch, self.start = epoch, start_batch

    def __len__(self) -> int:
        return self.n // self.batch_size - self.start

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        start, self.start = self.start, 0       # only the first pass after a resume is partial
        base = (self.seed * 100_003 + self.epoch) * self.n
        for b in range(start, self.n // self.batch_size):
            yield [(i, base + i) for i in perm[b * self.batch_size:(b + 1) * self.batch_size]]
