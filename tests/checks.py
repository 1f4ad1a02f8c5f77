"""Checks shared by the deep detectors' tests: order / chunk invariance of scores, a NaN-poisoned loss."""

from __future__ import annotations

import numpy as np


def assert_order_and_chunk_invariant(det, test: np.ndarray, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Shuffled rows get the same scores; scoring in chunks of 33 rows with an engine chunk of 7 matches
    scoring all at once (DESIGN.md, the detector contract)."""
    full = det.score_samples(test)
    order = np.random.default_rng(0).permutation(len(test))
    np.testing.assert_allclose(det.score_samples(test[order]), full[order], rtol=rtol, atol=atol)
    det.trainer.score_batch_size = 7
    chunks = np.concatenate([det.score_samples(test[i:i + 33]) for i in range(0, len(test), 33)])
    np.testing.assert_allclose(chunks, full, rtol=rtol, atol=atol)


def poison_loss(monkeypatch, cls, method: str, at_call: int) -> None:
    """Make `cls.<method>` (a `(loss, stats)` loss function) return a NaN loss on its `at_call`-th call."""
    original = getattr(cls, method)
    calls = {"n": 0}

    def poisoned(self, xb):
        loss, stats = original(self, xb)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == at_call else loss), stats

    monkeypatch.setattr(cls, method, poisoned)
