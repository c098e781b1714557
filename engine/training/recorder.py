"""What a training run records: scalars to metrics.jsonl, arrays to artifacts/<name>.npz.

Buffers in memory and flushes on demand (at each evaluation, every few seconds while training so a page
can follow the run live, and at the end), so recording costs almost nothing per step and a killed worker
keeps everything up to its last flush.
"""
from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from engine.store.runs import Run


class Recorder:
    live_seconds = 5.0    # wall time between the flushes that keep a live page current

    def __init__(self, run: Run | None) -> None:
        self.run = run
        self._flushed = time.monotonic()
        self._rows: list[dict] = []
        self._series: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self._whole: dict[str, dict[str, np.ndarray]] = {}
        self._dirty: set[str] = set()

    def scalar(self, step: int, split: str, name: str, value: float) -> None:
        self._rows.append({"step": int(step), "split": split, "name": name, "value": float(value)})

    def scalars(self, step: int, split: str, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.scalar(step, split, name, value)

    def append(self, artifact: str, step: int, **arrays: np.ndarray | float) -> None:
        """Add one time point to an artifact: each key is stacked over steps (shapes must agree)."""
        series = self._series[artifact]
        series["step"].append(int(step))
        for key, value in arrays.items():
            series[key].append(np.asarray(value))
        self._dirty.add(artifact)

    def put(self, artifact: str, **arrays: np.ndarray) -> None:
        """Set a whole artifact at once (e.g. final per-tensor counts)."""
        self._whole[artifact] = {k: np.asarray(v) for k, v in arrays.items()}
        self._dirty.add(artifact)

    def series(self, artifact: str) -> dict[str, np.ndarray]:
        return {k: np.stack(v) for k, v in self._series[artifact].items()} if artifact in self._series else {}

    def flush_if_due(self) -> None:
        """Write everything if `live_seconds` have passed since the last full flush: the live pages read it."""
        if time.monotonic() - self._flushed >= self.live_seconds:
            self.flush()

    def flush(self, arrays: bool = True) -> None:
        """Append buffered scalars; with `arrays`, also rewrite the artifacts changed since the last flush."""
        if arrays:
            self._flushed = time.monotonic()
        if self.run is None:
            self._rows.clear()
            return
        self.run.append_metrics(self._rows)
        self._rows = []
        if not arrays:
            return
        for name in sorted(self._dirty):
            arrays = dict(self._whole.get(name, {}))
            arrays.update(self.series(name))
            self.run.write_artifact(name, arrays)
        self._dirty.clear()
