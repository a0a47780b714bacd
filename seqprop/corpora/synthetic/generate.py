"""Generate the synthetic corpus: speakers, utterances, features and labels per split.

:func:`generate_corpus` (``seqprop prepare synthetic OUT_DIR``) writes
``train.h5``, ``validation.h5`` and ``test.h5`` through
:class:`seqprop.corpora.writer.SplitWriter`: the paper's 26 MFCC features per
frame (:func:`seqprop.features.mfcc`) and the phone covering each frame's
centre. Sizes, speakers and the seeding rule are described in the docstring of
:mod:`seqprop.corpora.synthetic`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seqprop.corpora.synthetic.model import FS, PHONES, make_speakers
from seqprop.corpora.synthetic.synthesis import synthesize_utterance
from seqprop.corpora.writer import SplitWriter
from seqprop.errors import ConfigError
from seqprop.features import FeatureConfig, feature_names, frame_centres, mfcc

__all__ = ["SPLITS", "generate_corpus"]

SPLITS = ("train", "validation", "test")


def _labels(
    starts: np.ndarray, ends: np.ndarray, classes: np.ndarray, n_frames: int, cfg: FeatureConfig
) -> np.ndarray:
    """The class of the segment covering each frame's centre (segments are contiguous)."""
    centres = frame_centres(n_frames, cfg)
    seg = np.searchsorted(starts, centres, side="right") - 1
    return classes[np.clip(seg, 0, len(classes) - 1)]


# --------------------------------------------------------------------------- corpus


def _check_arguments(
    sizes: dict[str, int],
    n_speakers: int | tuple[int, int, int],
    min_seconds: float,
    max_seconds: float,
    snr_db: tuple[float, float],
) -> tuple[int, int, int]:
    """Validate :func:`generate_corpus`'s arguments; speakers per split."""
    for name, k in sizes.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ConfigError(f"n_{name} must be a non-negative integer, got {k!r}")
    if sum(sizes.values()) == 0:
        raise ConfigError("the synthetic corpus needs at least one utterance")
    spk = (n_speakers,) * 3 if isinstance(n_speakers, (int, np.integer)) else tuple(n_speakers)
    if len(spk) != 3 or any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in spk
    ):
        raise ConfigError(
            f"n_speakers must be a positive int or three positive ints, got {n_speakers!r}"
        )
    if not (0.3 <= min_seconds <= max_seconds <= 60.0):
        raise ConfigError(
            f"need 0.3 <= min_seconds <= max_seconds <= 60, got {min_seconds}, {max_seconds}"
        )
    if not (len(snr_db) == 2 and -10.0 <= snr_db[0] <= snr_db[1] <= 100.0):
        raise ConfigError(f"snr_db must be (low, high) within [-10, 100] dB, got {snr_db!r}")
    return spk


def generate_corpus(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    n_train: int = 200,
    n_validation: int = 50,
    n_test: int = 50,
    n_speakers: int | tuple[int, int, int] = (12, 4, 4),
    min_seconds: float = 1.0,
    max_seconds: float = 3.0,
    snr_db: tuple[float, float] = (20.0, 35.0),
    overwrite: bool = False,
    progress: bool | Callable[[int, int], None] = False,
) -> dict[str, Path]:
    """Generate the synthetic corpus and write ``train.h5``, ``validation.h5``, ``test.h5``.

    Each utterance gets framewise ``targets`` and its phone sequence (the
    segments' classes in order, as ``labels`` / ``label_lengths``), so the
    corpus trains a framewise or a ``ctc`` model.

    Parameters
    ----------
    out_dir : path
        Output directory (created if missing).
    seed : int
        Everything is determined by it (see the module docstring).
    n_train, n_validation, n_test : int
        Utterances per split (a split with 0 is not written; at least one
        split must be non-empty).
    n_speakers : int or (int, int, int)
        Speakers per split (disjoint across splits); one int = the same number
        for every split.
    min_seconds, max_seconds : float
        Range of utterance lengths.
    snr_db : (float, float)
        Range of the background noise's SNR in dB.
    overwrite : bool
        Replace existing files.
    progress : bool or callable(done, total)

    Returns
    -------
    dict of split name -> Path
        The files written.

    Raises
    ------
    ConfigError
        Invalid sizes or ranges.
    DataError
        Output files exist (without ``overwrite``) or cannot be written.
    """
    sizes = {"train": n_train, "validation": n_validation, "test": n_test}
    spk = _check_arguments(sizes, n_speakers, min_seconds, max_seconds, snr_db)
    cfg = FeatureConfig()
    names = feature_names(cfg)
    present = [name for name, k in sizes.items() if k > 0]
    with SplitWriter(
        out_dir,
        present,
        overwrite=overwrite,
        progress=progress,
        total=sum(sizes.values()),
        desc="synthetic corpus",
    ) as writer:
        for s_index, split in enumerate(SPLITS):
            count = sizes[split]
            if count == 0:
                continue
            speakers = make_speakers(np.random.default_rng([seed, s_index, 0]), spk[s_index])
            feats, labels, tags, phone_seqs = [], [], [], []
            for i in range(count):
                rng = np.random.default_rng([seed, s_index, 1, i])
                who = i % len(speakers)
                signal, starts, ends, classes = synthesize_utterance(
                    rng,
                    speakers[who],
                    min_seconds=min_seconds,
                    max_seconds=max_seconds,
                    snr_db=snr_db,
                )
                x = mfcc(signal, FS, cfg)
                feats.append(x)
                labels.append(_labels(starts, ends, classes, x.shape[0], cfg))
                phone_seqs.append(np.asarray(classes, dtype=np.int64))
                tags.append(f"{split}/s{who:02d}/u{i:04d}")
                writer.tick()
            writer.write(
                split,
                feats,
                labels,
                class_names=list(PHONES),
                tags=tags,
                feature_names=names,
                source="synthetic",
                labels=phone_seqs,
            )
        return writer.commit()
