"""Helpers shared by the deep detectors' tests: a CPU trainer config, a toy problem, order / chunk
invariance of scores, a NaN-poisoned loss."""

from __future__ import annotations

import numpy as np


def cpu_trainer(**kw) -> dict:
    """A one-epoch CPU trainer config for tiny problems; keywords override any key. A checkpoint after every
    epoch (no 30 s spacing), so that a test can stop a run after any epoch and resume it."""
    return {"device": "cpu", "epochs": 1, "batch_size": 4, "lr": 1e-3, "progress": False, "checkpoint_seconds": 0,
            **kw}


def shifted_gaussians(seed: int = 0, d: int = 6, n_train: int = 512):
    """(train, test, labels): normal rows around +0.5, anomalies around -0.5 (same spread and norm); the
    test split has 200 normal rows, then 50 anomalies."""
    rng = np.random.default_rng(seed)

    def draw(n, sign):
        return (rng.normal(size=(n, d)) * 0.5 + sign * 0.5).astype(np.float32)

    return draw(n_train, 1), np.vstack([draw(200, 1), draw(50, -1)]), np.r_[np.zeros(200), np.ones(50)]


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


class Interrupt(Exception):
    """Raised by `stop_after`: a run killed between two epochs (after that epoch's checkpoint)."""


def stop_after(epoch: int):
    """An engine callback that interrupts training once `epoch` epochs are done, as a killed process would."""
    def callback(engine, done):
        if done == epoch:
            raise Interrupt(f"killed after epoch {done}")
    return callback
