"""The TIMIT recipe: find utterances, read audio and phone segments, write HDF5 splits.

This is what ``seqprop prepare timit SOURCE OUT_DIR`` runs. Graves &
Schmidhuber (2005), section 4.1: framewise phoneme classification on TIMIT,
61 phone classes, the SA sentences left out, 184 training utterances held out
for validation, the core/complete TEST set for testing.

Layouts
-------
Both layouts found in the wild are read; names are matched case-insensitively
and the layout is recognised from each file's directory names:

* LDC (the distribution on disc): ``.../TRAIN|TEST/DRn/SPEAKER/UTT.WAV|.PHN``,
  audio in NIST SPHERE (uncompressed PCM; shorten-compressed SPHERE files must be
  decompressed first, e.g. with ``sph2pipe``, because libsndfile cannot read
  them).
* NLTK's flat sample: ``.../drN-SPEAKER/UTT.wav|.phn``, audio RIFF WAVE or SPHERE.

Only files named like a TIMIT utterance (``sa1``, ``si836``, ``sx26``, ...)
count; others (``.txt``, ``.wrd``, the ``SA1.WAV.wav`` copies some
redistributions add) are ignored and reported. A source that mixes the two
layouts is an error.

Tags
----
Utterance ids are lower case ``drN/speaker/utt``, e.g. ``dr1/fvmh0/si836``.
For the LDC layout the subset is prefixed: ``train/dr1/fcjf0/si1027``,
``test/dr1/mdab0/si1366``. A flat tree and an LDC tree of the same
recordings therefore give the same tags apart from that prefix.

Audio
-----
Read with soundfile (libsndfile), in 16-bit integer units (sample values up
to 32767, as HTK reads them; see :mod:`seqprop.features`). Mono, 16 kHz
required. Truncated files are detected by comparing the sample count the
header promises (SPHERE ``sample_count``, RIFF ``data`` chunk size) with the
bytes present, because libsndfile silently returns the samples that are there.

Frame labels
------------
A ``.phn`` file lists ``start end phone`` segments in samples, end exclusive.
Frame t (centre sample ``160 t + 200``, see :func:`seqprop.features.frame_centres`)
gets the class of the segment with ``start <= centre < end``; a frame whose
centre no segment covers gets -1 (unlabelled). Classes are indices into the
61-phone list :func:`seqprop.corpora.timit.phones.phones61` (ASCII order), stored as
the dataset's ``class_names``. Segments must be sorted, non-overlapping, with
``0 <= start < end <= n_samples`` and a known phone; gaps are allowed. A last
segment may end up to :data:`PHN_END_TOLERANCE` samples (one 25 ms window)
past the audio, as hand alignments sometimes do; it is clipped to the audio.
Anything further out is an error.

Splits
------
* Default, LDC layout: ``TEST`` -> ``test``; ``n_validation`` = 184 ``TRAIN``
  utterances -> ``validation``, chosen by
  ``numpy.random.default_rng(seed).choice(n_train, 184, replace=False)`` over the
  training utterances sorted by tag (seed 0 unless given); the rest -> ``train``.
* Default, flat layout: everything in one split ``all``.
* Explicit: ``splits={"train": "fvmh0,mcpm0", "test": "@test_speakers.txt"}``:
  a comma-separated list of speaker ids or utterance ids, or ``@FILE`` with one
  id per line (``#`` comments allowed). A speaker id is e.g. ``fvmh0`` (or
  ``dr1/fvmh0``, ``dr1-fvmh0``); an utterance id is ``[train/]dr1/fvmh0/si836``,
  ``dr1-fvmh0/si836`` or ``fvmh0/si836``. Ids that match nothing and utterances
  named by two splits are errors; utterances no split names are left out (and
  counted in the report).

The SA sentences (``sa1``, ``sa2``) are left out unless ``include_sa=True``.
Features are not normalised here (the trainer normalises on the training set).
All split files are written under temporary names and renamed only when every
split succeeded.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqprop.corpora.timit.phones import phones61
from seqprop.corpora.writer import SplitWriter
from seqprop.errors import DataError
from seqprop.features import FeatureConfig, feature_names, frame_centres, mfcc

__all__ = [
    "DEFAULT_SEED",
    "N_VALIDATION",
    "PHN_END_TOLERANCE",
    "Corpus",
    "PrepareReport",
    "Utterance",
    "assign_splits",
    "find_utterances",
    "frame_labels",
    "load_utterance",
    "prepare_timit",
    "read_audio",
    "read_phn",
]

log = logging.getLogger(__name__)

#: Training utterances held out for validation (the paper's 184).
N_VALIDATION = 184
#: Seed of the validation draw.
DEFAULT_SEED = 0

_UTT_RE = re.compile(r"^s[aix]\d+$")
_DR_RE = re.compile(r"^dr\d+$")
_SPK_RE = re.compile(r"^[a-z][a-z0-9]*$")
_FLAT_RE = re.compile(r"^(dr\d+)-([a-z][a-z0-9]*)$")
_SPLIT_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Utterance:
    """One TIMIT recording and its phone transcription.

    Attributes
    ----------
    subset : str or None
        ``"train"``/``"test"`` for the LDC layout, None for the flat layout.
    dialect, speaker, name : str
        Lower case, e.g. ``"dr1"``, ``"fvmh0"``, ``"si836"``.
    wav, phn : Path
    """

    subset: str | None
    dialect: str
    speaker: str
    name: str
    wav: Path
    phn: Path

    @property
    def utt_id(self) -> str:
        """``drN/speaker/utt`` (the tag without the LDC subset)."""
        return f"{self.dialect}/{self.speaker}/{self.name}"

    @property
    def tag(self) -> str:
        """The stored sequence tag (``train/dr1/fcjf0/si1027`` or ``dr1/fvmh0/si836``)."""
        return self.utt_id if self.subset is None else f"{self.subset}/{self.utt_id}"

    @property
    def is_sa(self) -> bool:
        """Whether this is one of the dialect sentences SA1/SA2."""
        return self.name.startswith("sa")


@dataclass
class Corpus:
    """What :func:`find_utterances` found under a source directory.

    (Not to be confused with :class:`seqprop.corpora.Corpus`, the base class of
    registered corpora such as :class:`seqprop.corpora.timit.TimitCorpus`.)
    """

    root: Path
    layout: str  # "ldc" or "flat"
    utterances: list[Utterance]
    skipped: list[str] = field(default_factory=list)  # incomplete pairs skipped
    ignored: list[Path] = field(default_factory=list)  # .wav/.phn outside the layouts


@dataclass
class PrepareReport:
    """Result of :func:`prepare_timit` (the CLI prints it)."""

    layout: str
    files: dict[str, Path]
    n_utterances: dict[str, int]
    n_frames: dict[str, int]
    seconds: float
    left_out: int = 0
    excluded_sa: int = 0
    skipped: list[str] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------- discovery


def _classify(rel_parts: tuple[str, ...]) -> tuple[str, str | None, str, str] | None:
    """(layout, subset, dialect, speaker) of a file's parent directories, or None."""
    parents = [p.lower() for p in rel_parts[:-1]]
    if len(parents) >= 3:
        subset, dialect, speaker = parents[-3:]
        if subset in ("train", "test") and _DR_RE.match(dialect) and _SPK_RE.match(speaker):
            return "ldc", subset, dialect, speaker
    if parents:
        m = _FLAT_RE.match(parents[-1])
        if m:
            return "flat", None, m.group(1), m.group(2)
    return None


def _walk_files(root: Path) -> list[Path]:
    """All files under root, following directory links once (no cycles)."""
    out = []
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            out.append(Path(dirpath) / name)
    return out


def find_utterances(source: str | os.PathLike, *, skip_incomplete: bool = False) -> Corpus:
    """Find the TIMIT utterances (``.wav`` + ``.phn`` pairs) under ``source``.

    Parameters
    ----------
    source : path
        Root of an LDC or NLTK-style TIMIT tree (or any directory above it).
    skip_incomplete : bool
        Skip (and list in ``Corpus.skipped``, with a logged warning) a ``.wav``
        without ``.phn`` or vice versa instead of raising.

    Returns
    -------
    Corpus
        Utterances sorted by tag.

    Raises
    ------
    DataError
        Missing directory, no utterances, mixed layouts, duplicate files, or
        an incomplete pair without ``skip_incomplete``.
    """
    root = Path(source)
    if not root.exists():
        raise DataError(f"TIMIT source directory {root} does not exist")
    if not root.is_dir():
        raise DataError(f"TIMIT source {root} is not a directory")
    pairs: dict[tuple, dict[str, Path]] = {}
    layouts: dict[str, Path] = {}
    ignored: list[Path] = []
    for path in _walk_files(root):
        suffix = path.suffix.lower()
        if suffix not in (".wav", ".phn"):
            continue
        stem = path.name[: -len(suffix)].lower()
        where = _classify(path.relative_to(root).parts)
        if not _UTT_RE.match(stem) or where is None:
            ignored.append(path)
            continue
        layout, subset, dialect, speaker = where
        layouts.setdefault(layout, path)
        key = (subset, dialect, speaker, stem)
        entry = pairs.setdefault(key, {})
        if suffix in entry:
            raise DataError(f"two files for one utterance: {entry[suffix]} and {path}")
        entry[suffix] = path
    if len(layouts) > 1:
        raise DataError(
            f"{root} mixes the LDC layout ({layouts['ldc']}) and the flat NLTK layout "
            f"({layouts['flat']}); point SOURCE at one of them"
        )
    if not pairs:
        raise DataError(
            f"no TIMIT utterances (.wav + .phn named like si836, in TRAIN|TEST/DRn/SPEAKER/ "
            f"or drN-speaker/ directories) found under {root}"
        )
    utterances, skipped = [], []
    for key, entry in pairs.items():
        if len(entry) == 2:
            utterances.append(Utterance(*key, wav=entry[".wav"], phn=entry[".phn"]))
            continue
        have = next(iter(entry.values()))
        missing = ".phn" if ".wav" in entry else ".wav"
        expected = have.with_name(have.name[: -len(have.suffix)] + missing)
        msg = f"{have} has no matching {missing} file ({expected} or its upper-case name)"
        if not skip_incomplete:
            raise DataError(msg + "; use --skip-incomplete to leave such utterances out")
        log.warning("skipping incomplete utterance: %s", msg)
        skipped.append(msg)
    if not utterances:
        raise DataError(f"no complete TIMIT utterance (.wav with .phn) found under {root}")
    utterances.sort(key=lambda u: u.tag)
    if ignored:
        log.info(
            "ignored %d .wav/.phn files outside the TIMIT layouts, e.g. %s",
            len(ignored),
            ignored[0],
        )
    return Corpus(root, next(iter(layouts)), utterances, skipped, ignored)


# --------------------------------------------------------------------------- reading


def _expected_data_bytes(path: Path, head: bytes, file_size: int) -> tuple[int, int] | None:
    """(bytes the header promises, bytes present) for SPHERE and RIFF files, else None."""
    if head.startswith(b"NIST_1A"):
        try:
            header_size = int(head[8:16].split()[0])
        except (ValueError, IndexError):
            return None  # let soundfile report the bad header
        text = head[:header_size].decode("ascii", errors="replace")
        fields_ = {}
        for line in text.splitlines()[2:]:
            parts = line.split(None, 2)
            if len(parts) == 3:
                fields_[parts[0]] = parts[2].strip()
        coding = fields_.get("sample_coding", "pcm")
        if "shorten" in coding or "wavpack" in coding or "shortpack" in coding:
            raise DataError(
                f"{path}: compressed NIST SPHERE audio ({coding}) cannot be read by "
                f"libsndfile; decompress it first (e.g. sph2pipe -f wav)"
            )
        try:
            count = int(fields_["sample_count"])
            width = int(fields_.get("sample_n_bytes", 2))
            channels = int(fields_.get("channel_count", 1))
        except (KeyError, ValueError):
            return None
        return count * width * channels, file_size - header_size
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        pos = 12
        while pos + 8 <= len(head):
            chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
            if chunk == b"data":
                if size in (0, 0xFFFFFFFF):  # streamed file of unknown length
                    return None
                return size, file_size - (pos + 8)
            pos += 8 + size + (size & 1)
    return None


def read_audio(path: str | os.PathLike, *, sample_rate: int = 16000) -> np.ndarray:
    """Read a mono TIMIT recording in 16-bit integer units.

    Parameters
    ----------
    path : path
        NIST SPHERE or RIFF WAVE file (anything libsndfile reads).
    sample_rate : int
        Required sampling rate.

    Returns
    -------
    np.ndarray, shape (n_samples,), float64
        Samples scaled so that 16-bit PCM gives its integer values.

    Raises
    ------
    DataError
        Unreadable, truncated, empty, multi-channel audio or a different rate.
    """
    try:
        import soundfile as sf
    except ImportError as exc:
        raise DataError(
            "reading TIMIT audio needs the soundfile package: pip install 'seqprop[audio]'"
        ) from exc

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"cannot read audio file {path}: {exc.strerror or exc}") from exc
    promised = _expected_data_bytes(path, head, size)
    if promised is not None and promised[1] < promised[0]:
        raise DataError(
            f"{path}: truncated audio file (header promises {promised[0]} bytes of samples, "
            f"{max(promised[1], 0)} present)"
        )
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except Exception as exc:  # libsndfile errors, bad headers
        raise DataError(f"cannot read audio file {path}: {exc}") from exc
    if rate != sample_rate:
        raise DataError(f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz")
    if data.shape[1] != 1:
        raise DataError(f"{path}: {data.shape[1]} channels, expected mono audio")
    if data.shape[0] == 0:
        raise DataError(f"{path}: the audio file holds no samples")
    signal = data[:, 0] * 32768.0
    if not np.all(np.isfinite(signal)):
        raise DataError(f"{path}: audio contains NaN or infinite samples")
    return signal


PHN_END_TOLERANCE = 400
"""Samples a .phn segment may run past the end of the audio (then clipped)."""


def read_phn(
    path: str | os.PathLike,
    n_samples: int | None = None,
    *,
    phones: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read and validate a TIMIT ``.phn`` file.

    Parameters
    ----------
    path : path
    n_samples : int, optional
        Length of the recording; segments must end at or before it.
    phones : sequence of str, optional
        Phone inventory (class order); the 61 TIMIT phones by default.

    Returns
    -------
    starts, ends : np.ndarray, shape (S,), int64
        Segment boundaries in samples, end exclusive.
    classes : np.ndarray, shape (S,), int64
        Index of each segment's phone in ``phones``.

    Raises
    ------
    DataError
        Naming the file and line: malformed line, negative or empty segment,
        segment beyond the audio, unsorted or overlapping segments, unknown
        phone, no segments.
    """
    path = Path(path)
    index = {p: i for i, p in enumerate(phones if phones is not None else phones61())}
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not a TIMIT .phn text file ({exc.reason} at byte {exc.start})"
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    starts, ends, classes = [], [], []
    prev_start, prev_end = -1, 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}, line {lineno}"
        if len(parts) != 3:
            raise DataError(f"{where}: expected 'start end phone', got {line.strip()!r}")
        try:
            start, end = int(parts[0]), int(parts[1])
        except ValueError:
            raise DataError(
                f"{where}: segment boundaries must be integers, got {line.strip()!r}"
            ) from None
        phone = parts[2].lower()
        if start < 0:
            raise DataError(f"{where}: negative start sample {start}")
        if end <= start:
            raise DataError(f"{where}: segment end {end} is not after its start {start}")
        if n_samples is not None and end > n_samples:
            if start < n_samples and end - n_samples <= PHN_END_TOLERANCE:
                end = n_samples
        if n_samples is not None and end > n_samples:
            raise DataError(
                f"{where}: segment {start}-{end} runs past the end of the audio ({n_samples} samples)"
            )
        if start < prev_start:
            raise DataError(
                f"{where}: segments not sorted (start {start} after a segment starting at {prev_start})"
            )
        if start < prev_end:
            raise DataError(
                f"{where}: segment {start}-{end} overlaps the previous one ending at {prev_end}"
            )
        if phone not in index:
            raise DataError(f"{where}: unknown phone {parts[2]!r}")
        starts.append(start)
        ends.append(end)
        classes.append(index[phone])
        prev_start, prev_end = start, end
    if not starts:
        raise DataError(f"{path}: no phone segments")
    return (
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
        np.asarray(classes, dtype=np.int64),
    )


def frame_labels(
    starts: np.ndarray,
    ends: np.ndarray,
    classes: np.ndarray,
    n_frames: int,
    config: FeatureConfig | None = None,
) -> np.ndarray:
    """Label each frame with the segment covering its centre sample (-1 if none).

    Parameters
    ----------
    starts, ends, classes : np.ndarray, shape (S,)
        Sorted, non-overlapping segments (as :func:`read_phn` returns them).
    n_frames : int
    config : FeatureConfig, optional

    Returns
    -------
    np.ndarray, shape (n_frames,), int64
    """
    centres = frame_centres(n_frames, config)
    seg = np.searchsorted(starts, centres, side="right") - 1
    safe = np.clip(seg, 0, None)
    covered = (seg >= 0) & (centres < ends[safe])
    return np.where(covered, classes[safe], -1)


def load_utterance(
    utt: Utterance, config: FeatureConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Features and frame labels of one utterance.

    Returns
    -------
    features : np.ndarray, shape (T, 26), float64
    labels : np.ndarray, shape (T,), int64
        Indices into the 61 phones, -1 where no segment covers the frame centre.

    Raises
    ------
    DataError
        Bad audio or ``.phn`` (naming the file).
    """
    feats, labels, _ = load_utterance_phones(utt, config)
    return feats, labels


def load_utterance_phones(
    utt: Utterance, config: FeatureConfig | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, frame labels and the phone sequence of one utterance.

    The phone sequence (S,) int64 is the ``.phn`` file's segments in order, as
    the same 61-phone indices as the frame labels: the utterance's target for
    a ``ctc`` model (written as ``labels`` / ``label_lengths``).
    """
    cfg = config or FeatureConfig()
    signal = read_audio(utt.wav, sample_rate=cfg.sample_rate)
    starts, ends, classes = read_phn(utt.phn, signal.shape[0])
    try:
        feats = mfcc(signal, cfg.sample_rate, cfg)
    except DataError as exc:
        raise DataError(f"{utt.wav}: {exc}") from None
    return feats, frame_labels(starts, ends, classes, feats.shape[0], cfg), classes


# --------------------------------------------------------------------------- splits


def _read_spec(spec: str | Sequence[str], split: str) -> list[str]:
    if not isinstance(spec, str):
        return [str(s) for s in spec]
    spec = spec.strip()
    if spec.startswith("@"):
        fname = Path(spec[1:])
        try:
            text = fname.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"split {split!r}: cannot read list file {fname}: {exc}") from exc
        ids = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        ids = [i for i in ids if i]
        if not ids:
            raise DataError(f"split {split!r}: list file {fname} names no speaker or utterance")
        return ids
    ids = [s.strip() for s in spec.split(",") if s.strip()]
    if not ids:
        raise DataError(f"split {split!r}: empty speaker/utterance list")
    return ids


def _match(ident: str, utterances: Sequence[Utterance]) -> list[Utterance]:
    norm = ident.strip().lower().replace("\\", "/").strip("/")
    parts = [p for p in norm.split("/") if p]
    if not parts:
        return []
    if _UTT_RE.match(parts[-1]) and len(parts) >= 2:
        name, rest = parts[-1], parts[:-1]
        flat = _FLAT_RE.match(rest[-1])
        dialect, speaker = (flat.group(1), flat.group(2)) if flat else (None, rest[-1])
        if not flat and len(rest) >= 2:
            dialect = rest[-2]
        subset = rest[-3] if (not flat and len(rest) >= 3) else None
        return [
            u
            for u in utterances
            if u.name == name
            and u.speaker == speaker
            and (dialect is None or u.dialect == dialect)
            and (subset is None or u.subset is None or u.subset == subset)
        ]
    flat = _FLAT_RE.match(parts[-1])
    if flat:
        dialect, speaker = flat.group(1), flat.group(2)
    else:
        speaker = parts[-1]
        dialect = parts[-2] if len(parts) >= 2 else None
    return [
        u for u in utterances if u.speaker == speaker and (dialect is None or u.dialect == dialect)
    ]


def assign_splits(
    corpus: Corpus,
    splits: Mapping[str, str | Sequence[str]] | None = None,
    *,
    include_sa: bool = False,
    seed: int = DEFAULT_SEED,
    n_validation: int = N_VALIDATION,
) -> tuple[dict[str, list[Utterance]], int, int]:
    """Decide which utterances go into which split (rules in the module docstring).

    Returns
    -------
    chosen : dict of split name -> list of Utterance (sorted by tag)
    left_out : int
        Utterances (after the SA rule) that no split names.
    excluded_sa : int
        SA utterances left out by the SA rule.
    """
    pool = [u for u in corpus.utterances if include_sa or not u.is_sa]
    excluded_sa = len(corpus.utterances) - len(pool)
    if not pool:
        raise DataError(f"{corpus.root}: only SA sentences found; use --include-sa to keep them")
    chosen: dict[str, list[Utterance]] = {}
    if splits:
        owner: dict[str, str] = {}
        for split, spec in splits.items():
            if not _SPLIT_NAME_RE.match(split):
                raise DataError(
                    f"invalid split name {split!r}: use letters, digits, '_', '-', '.', "
                    f"not starting with '.' or '-'"
                )
            members: dict[str, Utterance] = {}
            for ident in _read_spec(spec, split):
                found = _match(ident, corpus.utterances)
                if not found:
                    raise DataError(
                        f"split {split!r}: no speaker or utterance {ident!r} under {corpus.root}"
                    )
                kept = [u for u in found if include_sa or not u.is_sa]
                if not kept:
                    raise DataError(
                        f"split {split!r}: {ident!r} names only SA sentences, which are left out "
                        f"(use --include-sa to keep them)"
                    )
                for u in kept:
                    if owner.get(u.tag, split) != split:
                        raise DataError(
                            f"utterance {u.tag} is named by two splits, {owner[u.tag]!r} and {split!r}"
                        )
                    owner[u.tag] = split
                    members[u.tag] = u
            chosen[split] = [members[t] for t in sorted(members)]
        left_out = sum(1 for u in pool if u.tag not in owner)
        return chosen, left_out, excluded_sa
    if corpus.layout == "flat":
        return {"all": pool}, 0, excluded_sa
    train = [u for u in pool if u.subset == "train"]
    test = [u for u in pool if u.subset == "test"]
    if n_validation < 0:
        raise DataError(f"n_validation must be >= 0, got {n_validation}")
    if len(train) <= n_validation:
        raise DataError(
            f"{corpus.root}: {len(train)} TRAIN utterances, not enough to hold out {n_validation} "
            f"for validation; lower --n-validation or name the splits with --split"
        )
    pick = np.random.default_rng(seed).choice(len(train), size=n_validation, replace=False)
    is_val = np.zeros(len(train), dtype=bool)
    is_val[pick] = True
    chosen["train"] = [u for u, v in zip(train, is_val, strict=True) if not v]
    if n_validation:
        chosen["validation"] = [u for u, v in zip(train, is_val, strict=True) if v]
    if test:
        chosen["test"] = test
    return chosen, 0, excluded_sa


# --------------------------------------------------------------------------- prepare


def prepare_timit(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    splits: Mapping[str, str | Sequence[str]] | None = None,
    include_sa: bool = False,
    seed: int = DEFAULT_SEED,
    n_validation: int = N_VALIDATION,
    skip_incomplete: bool = False,
    overwrite: bool = False,
    config: FeatureConfig | None = None,
    progress: bool | Callable[[int, int], None] = False,
) -> PrepareReport:
    """Turn a TIMIT tree into one ``seqprop.sequences`` HDF5 file per split.

    Writes ``out_dir/<split>.h5`` with tags = utterance ids, ``class_names`` =
    the 61 phones, ``feature_names`` = :func:`seqprop.features.feature_names`,
    ``source = "timit"``; no normalisation statistics. Each utterance's
    framewise ``targets`` and its phone sequence (``labels`` /
    ``label_lengths``, the ``.phn`` segments in order, same class indices) are
    both written, so one prepared corpus trains a framewise or a ``ctc`` model. Every split is
    written to a temporary name first and renamed when all are complete.

    Parameters
    ----------
    source : path
        LDC or NLTK-layout TIMIT tree.
    out_dir : path
        Output directory (created if missing).
    splits : mapping of split name -> spec, optional
        Speaker/utterance lists (see the module docstring); default: the
        paper's splits for the LDC layout, ``all`` for the flat layout.
    include_sa : bool
        Keep the SA sentences.
    seed, n_validation : int
        Validation draw for the LDC default split.
    skip_incomplete : bool
        Skip ``.wav`` files without ``.phn`` and vice versa (else error).
    overwrite : bool
        Replace existing split files.
    config : FeatureConfig, optional
        Front end; the paper's by default.
    progress : bool or callable(done, total)
        Show a tqdm bar, or call this after each utterance.

    Returns
    -------
    PrepareReport

    Raises
    ------
    DataError
        Any bad input, naming the file (and line for ``.phn``); nothing is left
        behind in ``out_dir``.
    """
    t0 = time.perf_counter()
    cfg = config or FeatureConfig()
    corpus = find_utterances(source, skip_incomplete=skip_incomplete)
    chosen, left_out, excluded_sa = assign_splits(
        corpus, splits, include_sa=include_sa, seed=seed, n_validation=n_validation
    )
    empty = [name for name, utts in chosen.items() if not utts]
    if empty:
        raise DataError(f"split {empty[0]!r} would hold no utterances")
    names = feature_names(cfg)
    classes = list(phones61())
    report = PrepareReport(
        corpus.layout, {}, {}, {}, 0.0, left_out, excluded_sa, corpus.skipped, corpus.ignored
    )
    with SplitWriter(
        out_dir,
        chosen,
        overwrite=overwrite,
        progress=progress,
        total=sum(len(u) for u in chosen.values()),
        desc="prepare timit",
    ) as writer:
        for split, utts in chosen.items():
            feats, labels, phone_seqs = [], [], []
            for utt in utts:
                x, y, phone_seq = load_utterance_phones(utt, cfg)
                feats.append(x)
                labels.append(y)
                phone_seqs.append(phone_seq)
                writer.tick()
            writer.write(
                split,
                feats,
                labels,
                class_names=classes,
                tags=[u.tag for u in utts],
                feature_names=names,
                source="timit",
                labels=phone_seqs,
            )
            report.n_utterances[split] = len(utts)
            report.n_frames[split] = int(sum(len(y) for y in labels))
        report.files = writer.commit()
    report.seconds = time.perf_counter() - t0
    return report
