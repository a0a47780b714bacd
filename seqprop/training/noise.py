"""Training noise: Gaussian input noise and weight noise (Graves et al. 2006; Graves 2012).

``train.input_noise = sigma`` adds N(0, sigma^2) noise to every (normalised)
input value of each training sequence, a fresh draw every time the sequence
is trained on (the CTC paper used sigma = 0.6). ``train.weight_noise = sigma``
adds N(0, sigma^2) noise to every parameter for the forward and backward pass
of one update (a fresh draw per update); the gradient so computed is then
applied to the clean weights, which are restored exactly before the update.
Validation, testing and prediction never see either.

Both draw from a generator seeded by the run's seed and the update's place
in training, ``(seed, epoch, update)``: the draws of an update are the same
whether the run went straight through or was interrupted and resumed from a
checkpoint (which stores the epoch and the position in it), so resumes stay
bit-exact without storing another generator's state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

__all__ = ["TrainingNoise"]

_STREAM = 2  # the trainer's generators: 0 = weights, 1 = shuffling, 2 = noise


class TrainingNoise:
    """Input and weight noise of a run.

    Parameters
    ----------
    input_sigma, weight_sigma : float
        Standard deviations (0 = off).
    seed : int
        The run's ``train.seed``.
    """

    def __init__(self, input_sigma: float, weight_sigma: float, seed: int) -> None:
        self.input_sigma = float(input_sigma)
        self.weight_sigma = float(weight_sigma)
        self.seed = int(seed)
        self._rng: np.random.Generator | None = None

    @property
    def active(self) -> bool:
        return self.input_sigma > 0 or self.weight_sigma > 0

    def start_update(self, epoch: int, update: int) -> None:
        """Seed the draws of update ``update`` (0-based) of epoch ``epoch`` (0-based)."""
        if self.active:
            seq = np.random.SeedSequence([self.seed, _STREAM, int(epoch), int(update)])
            self._rng = np.random.default_rng(seq)

    def inputs(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``x`` (T, B, I) plus noise on every frame inside its sequence (a new array)."""
        if self.input_sigma <= 0:
            return x
        noise = self._rng.standard_normal(x.shape)
        noise *= self.input_sigma
        noise[np.arange(x.shape[0])[:, None] >= np.asarray(lengths)[None, :]] = 0.0
        return (x + noise).astype(x.dtype, copy=False)

    @contextlib.contextmanager
    def weights(self, flat: np.ndarray) -> Iterator[None]:
        """Within the block, ``flat`` (the parameter vector) holds noisy weights."""
        if self.weight_sigma <= 0:
            yield
            return
        clean = flat.copy()
        noise = self._rng.standard_normal(flat.shape)
        noise *= self.weight_sigma
        flat += noise.astype(flat.dtype, copy=False)
        try:
            yield
        finally:
            flat[...] = clean
