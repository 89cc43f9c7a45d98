"""Progress display: a tqdm bar on a terminal; otherwise (a log file, CI, a pipe) one plain line every
`every` items, so that logs hold readable lines instead of carriage-return bar redraws."""
from __future__ import annotations

import sys
import time

from tqdm import tqdm


class LineProgress:
    """The part of tqdm's interface this package uses (iteration, update, set_postfix, close)."""

    def __init__(self, iterable=None, total: int | None = None, desc: str = "", initial: int = 0,
                 every: int | None = None):
        self.iterable, self.desc, self.n, self.postfix, self.t0 = iterable, desc, initial, "", time.time()
        self.total = total if total is not None or not hasattr(iterable, "__len__") else len(iterable)
        self.every = every or max(1, (self.total or 100) // 10)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n % self.every == 0 or self.n == self.total:
            of = f"/{self.total}" if self.total else ""
            post = f" {self.postfix}" if self.postfix else ""
            print(f"[{self.desc}] {self.n}{of} ({time.time() - self.t0:.0f} s){post}", file=sys.stderr, flush=True)

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        pass


def progress(iterable=None, *, total: int | None = None, desc: str = "", initial: int = 0, disable: bool = False,
             every: int | None = None):
    """tqdm(iterable, ...) on a terminal, else LineProgress; `disable` shows nothing."""
    if disable or sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, initial=initial, disable=disable)
    return LineProgress(iterable, total, desc, initial, every)
