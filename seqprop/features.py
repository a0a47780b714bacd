"""The paper's acoustic front end: 12 MFCCs + log energy + first derivatives.

Graves & Schmidhuber (2005), section 4.1, describe TIMIT preprocessed into
12 mel-frequency cepstral coefficients plus log energy from 25 ms Hamming
windows every 10 ms, with first derivatives: 26 values per frame. The paper
does not list the remaining parameters; this module follows HTK (the HTK Book,
chapter "Speech Input/Output") wherever HTK has a convention, and says where it
departs from it. With the default :class:`FeatureConfig` a frame is computed
as follows (N = window length = 400 samples, M = FFT size = 512, at 16 kHz):

Framing
    ``n_frames = 1 + (n_samples - N) // S`` with window N = 400 samples
    (``window_ms`` = 25) and shift S = 160 samples (``shift_ms`` = 10);
    frame t covers samples ``[S*t, S*t + N)``. No padding: samples after the
    last full window are dropped. Frame t's centre is sample ``S*t + N//2``
    (= ``160*t + 200``); :func:`frame_centres` returns these indices, and the
    TIMIT recipe labels each frame with the phone segment that covers its
    centre. A signal shorter than one window raises :class:`~seqprop.errors.DataError`
    (a dataset cannot hold a zero-length sequence). Same as HTK's
    ``(n_samples - WINDOWSIZE) / TARGETRATE + 1``.

Log energy
    ``log(max(sum_n x[n]**2, floor))`` over the frame's raw samples, *before*
    pre-emphasis and windowing (HTK's ``RAWENERGY = T``, the default). No
    per-utterance energy normalisation (HTK ``ENORMALISE = F``); seqprop
    normalises every feature on the training set instead. Natural logarithm.

Pre-emphasis (per frame, as HTK)
    ``y[0] = (1 - k) x[0]`` and ``y[n] = x[n] - k x[n-1]`` for n >= 1 *within
    the frame*, k = ``preemphasis`` = 0.97. (A whole-signal filter would use
    the sample before the frame for y[0]; HTK does not.) No DC removal
    (HTK ``ZMEANSOURCE = F``).

Window
    Symmetric Hamming window ``w[n] = 0.54 - 0.46 cos(2 pi n / (N - 1))``,
    n = 0..N-1 (HTK's).

Spectrum
    The windowed frame is zero-padded to M = 512 points (``n_fft``; HTK rounds
    up to the next power of two) and ``|rfft|**2`` is taken: a power spectrum
    at bins k = 0..M/2 with frequencies ``f_k = k * sample_rate / M``.
    ``spectrum="magnitude"`` uses ``|rfft|`` instead, which is HTK's own
    default (``USEPOWER = F``); the paper does not say which it used.

Mel filterbank (HTK's construction)
    Mel scale ``mel(f) = 2595 log10(1 + f / 700)``. The 26 channels
    (``n_filters``) have centres c_1..c_26 equally spaced in mel between
    c_0 = mel(``low_freq`` = 0 Hz) and c_27 = mel(``high_freq``, default the
    Nyquist frequency). Channel m weights bin k by a triangle that is linear in
    *mel* (not in Hz): ``w_m(k) = max(0, min((mel(f_k) - c_{m-1}) / (c_m - c_{m-1}),
    (c_{m+1} - mel(f_k)) / (c_{m+1} - c_m)))``. The triangles are not area
    normalised (peak weight 1, as HTK). The DC and Nyquist bins get weight 0
    with the default band edges. Channel energy ``e_m = sum_k w_m(k) P(k)``,
    then ``log(max(e_m, floor))``.

Floor
    ``floor`` = 1.0 (HTK's ``MELFLOOR``) is applied to the frame energy and to
    every channel energy before the log. It assumes the signal is in 16-bit
    integer units (sample values up to 32767), as HTK reads waveforms and as
    the TIMIT recipe and the synthetic corpus deliver them. For signals scaled
    to [-1, 1] pass a smaller floor (e.g. ``floor=1e-10``).

Cepstrum
    DCT-II of the log channel energies with HTK's scaling,
    ``c_i = sqrt(2 / F) sum_{j=1}^{F} log e_j cos(pi i (j - 0.5) / F)``,
    F = 26, keeping c_1..c_12 (``n_ceps``; c_0 is not used: log energy takes
    its place, HTK's ``MFCC_E``). This is ``scipy.fft.dct(type=2, norm="ortho")``
    for i >= 1.

Liftering
    ``c_i <- (1 + L/2 sin(pi i / L)) c_i`` with L = 22 (``lifter``, HTK's
    ``CEPLIFTER``); ``lifter=0`` disables it.

Deltas
    HTK's regression formula with window Theta = 2 (``delta_window``):
    ``d_t = sum_{th=1}^{Theta} th (c_{t+th} - c_{t-th}) / (2 sum_{th=1}^{Theta} th**2)``,
    frames beyond either end replaced by the first/last frame (HTK's
    edge replication). Deltas are taken of all 13 static values, log energy
    included.

Feature order (26 columns, see :func:`feature_names`)
    ``c1..c12, logE, d_c1..d_c12, d_logE``: HTK's ``MFCC_E_D`` order.

Everything is vectorised over frames (one matrix per utterance); the result is
float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

from seqprop.errors import ConfigError, DataError

__all__ = [
    "FeatureConfig",
    "feature_names",
    "frame_centres",
    "mel_filterbank",
    "mfcc",
    "n_frames_for",
]


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the MFCC front end; the defaults are the paper's (HTK-style).

    Attributes
    ----------
    sample_rate : int
        Expected sampling rate in Hz (16000 for TIMIT).
    window_ms, shift_ms : float
        Window length and frame shift in milliseconds (25, 10).
    preemphasis : float
        Pre-emphasis coefficient k (0.97); 0 disables it.
    n_fft : int
        FFT size (512); at least the window length in samples.
    n_filters : int
        Number of triangular mel channels (26).
    n_ceps : int
        Cepstral coefficients kept, c_1..c_n_ceps (12).
    lifter : float
        HTK cepstral lifter L (22); 0 disables liftering.
    low_freq, high_freq : float or None
        Filterbank band edges in Hz (0 and None = Nyquist).
    use_energy : bool
        Append the log frame energy (True).
    delta_window : int
        Regression window Theta of the deltas (2); 0 means no deltas.
    spectrum : {"power", "magnitude"}
        Filterbank input: power spectrum (default) or magnitude (HTK default).
    floor : float
        Floor applied to energies before the log (1.0, HTK's MELFLOOR, for
        16-bit-scaled signals).
    """

    sample_rate: int = 16000
    window_ms: float = 25.0
    shift_ms: float = 10.0
    preemphasis: float = 0.97
    n_fft: int = 512
    n_filters: int = 26
    n_ceps: int = 12
    lifter: float = 22.0
    low_freq: float = 0.0
    high_freq: float | None = None
    use_energy: bool = True
    delta_window: int = 2
    spectrum: Literal["power", "magnitude"] = "power"
    floor: float = 1.0

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ConfigError(f"FeatureConfig.sample_rate must be positive, got {self.sample_rate}")
        if self.window_ms <= 0 or self.shift_ms <= 0:
            raise ConfigError("FeatureConfig.window_ms and shift_ms must be positive")
        if self.window_length < 2 or self.shift < 1:
            raise ConfigError("FeatureConfig: window shorter than 2 samples or shift below 1")
        if self.n_fft < self.window_length:
            raise ConfigError(
                f"FeatureConfig.n_fft={self.n_fft} is shorter than the window "
                f"({self.window_length} samples)"
            )
        if not 0.0 <= self.preemphasis < 1.0:
            raise ConfigError(
                f"FeatureConfig.preemphasis must be in [0, 1), got {self.preemphasis}"
            )
        if self.n_filters < 2:
            raise ConfigError("FeatureConfig.n_filters must be at least 2")
        if not 1 <= self.n_ceps < self.n_filters:
            raise ConfigError(
                f"FeatureConfig.n_ceps must be in [1, n_filters), got {self.n_ceps} "
                f"with n_filters={self.n_filters}"
            )
        if self.lifter < 0:
            raise ConfigError("FeatureConfig.lifter must be >= 0")
        nyquist = self.sample_rate / 2
        high = self.nyquist_high
        if not 0.0 <= self.low_freq < high <= nyquist:
            raise ConfigError(
                f"FeatureConfig: need 0 <= low_freq < high_freq <= {nyquist:g} Hz, got "
                f"low_freq={self.low_freq}, high_freq={self.high_freq}"
            )
        if self.delta_window < 0:
            raise ConfigError("FeatureConfig.delta_window must be >= 0")
        if self.spectrum not in ("power", "magnitude"):
            raise ConfigError(
                f"FeatureConfig.spectrum must be 'power' or 'magnitude', got {self.spectrum!r}"
            )
        if not (self.floor > 0 and math.isfinite(self.floor)):
            raise ConfigError(f"FeatureConfig.floor must be positive and finite, got {self.floor}")

    @property
    def window_length(self) -> int:
        """Window length in samples (400 at 16 kHz)."""
        return int(round(self.sample_rate * self.window_ms / 1000.0))

    @property
    def shift(self) -> int:
        """Frame shift in samples (160 at 16 kHz)."""
        return int(round(self.sample_rate * self.shift_ms / 1000.0))

    @property
    def nyquist_high(self) -> float:
        """Upper band edge in Hz (``high_freq`` or the Nyquist frequency)."""
        return self.sample_rate / 2 if self.high_freq is None else float(self.high_freq)

    @property
    def n_static(self) -> int:
        """Static features per frame (12 + 1)."""
        return self.n_ceps + int(self.use_energy)

    @property
    def n_features(self) -> int:
        """Features per frame (26 with the defaults)."""
        return self.n_static * (2 if self.delta_window > 0 else 1)

    def to_dict(self) -> dict:
        """The parameters as a plain dict (for storing beside a dataset)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_DEFAULT = FeatureConfig()


def _mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def feature_names(config: FeatureConfig | None = None) -> list[str]:
    """Names of the feature columns, in order.

    Returns
    -------
    list of str
        ``["c1", ..., "c12", "logE", "d_c1", ..., "d_c12", "d_logE"]`` with the
        default configuration.
    """
    cfg = config or _DEFAULT
    static = [f"c{i}" for i in range(1, cfg.n_ceps + 1)]
    if cfg.use_energy:
        static.append("logE")
    if cfg.delta_window > 0:
        return static + [f"d_{name}" for name in static]
    return static


def n_frames_for(n_samples: int, config: FeatureConfig | None = None) -> int:
    """Number of frames of a signal of ``n_samples`` samples (0 if shorter than a window)."""
    cfg = config or _DEFAULT
    if n_samples < cfg.window_length:
        return 0
    return 1 + (n_samples - cfg.window_length) // cfg.shift


def frame_centres(n_frames: int, config: FeatureConfig | None = None) -> np.ndarray:
    """Sample index of each frame's centre: ``shift * t + window_length // 2``.

    Returns
    -------
    np.ndarray, shape (n_frames,), int64
        ``160 * t + 200`` with the defaults.
    """
    cfg = config or _DEFAULT
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    return cfg.shift * np.arange(n_frames, dtype=np.int64) + cfg.window_length // 2


def mel_filterbank(config: FeatureConfig | None = None) -> np.ndarray:
    """The triangular mel filterbank as a weight matrix (HTK construction).

    Returns
    -------
    np.ndarray, shape (n_filters, n_fft // 2 + 1)
        Weight of FFT bin k in channel m; triangles linear in mel, peak 1.
    """
    cfg = config or _DEFAULT
    n_bins = cfg.n_fft // 2 + 1
    bin_mel = _mel(np.arange(n_bins) * (cfg.sample_rate / cfg.n_fft))
    edges = np.linspace(_mel(cfg.low_freq), _mel(cfg.nyquist_high), cfg.n_filters + 2)
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bin_mel[None, :] - lo) / (centre - lo)
    falling = (hi - bin_mel[None, :]) / (hi - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def _deltas(static: np.ndarray, theta: int) -> np.ndarray:
    """HTK regression deltas over axis 0 with edge replication."""
    n = static.shape[0]
    padded = np.concatenate(
        [np.repeat(static[:1], theta, axis=0), static, np.repeat(static[-1:], theta, axis=0)]
    )
    num = np.zeros_like(static)
    for th in range(1, theta + 1):  # a loop over the window, not over frames
        num += th * (padded[theta + th : theta + th + n] - padded[theta - th : theta - th + n])
    return num / (2.0 * sum(th * th for th in range(1, theta + 1)))


def mfcc(
    signal: np.ndarray,
    sample_rate: int = 16000,
    config: FeatureConfig | None = None,
) -> np.ndarray:
    """MFCC + log energy + deltas of one utterance (the paper's 26 features).

    See the module docstring for every convention.

    Parameters
    ----------
    signal : np.ndarray, shape (n_samples,)
        Mono waveform, any real dtype, in 16-bit integer units (see ``floor``).
    sample_rate : int
        Sampling rate of ``signal`` in Hz; must equal ``config.sample_rate``.
    config : FeatureConfig, optional
        Front-end parameters; the paper's defaults when omitted.

    Returns
    -------
    np.ndarray, shape (n_frames, n_features), float64
        ``n_frames = 1 + (n_samples - 400) // 160``; 26 columns in the order of
        :func:`feature_names`.

    Raises
    ------
    DataError
        If the signal is not 1-D and real, contains NaN/inf, or is shorter than
        one window; or if ``sample_rate`` differs from the configuration's.
    """
    cfg = config or _DEFAULT
    if sample_rate != cfg.sample_rate:
        raise DataError(
            f"sample rate {sample_rate} Hz does not match the feature configuration "
            f"({cfg.sample_rate} Hz)"
        )
    x = np.asarray(signal)
    if x.ndim != 1:
        raise DataError(f"signal must be 1-D (mono), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"signal must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        raise DataError("signal contains NaN or infinite samples")
    n_frames = n_frames_for(x.shape[0], cfg)
    if n_frames == 0:
        raise DataError(
            f"signal of {x.shape[0]} samples is shorter than one analysis window "
            f"({cfg.window_length} samples)"
        )
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.fft import dct, rfft

    n = cfg.window_length
    frames = sliding_window_view(x, n)[:: cfg.shift][:n_frames]  # (T, N) view

    static = []
    # Cepstra.
    k = cfg.preemphasis
    emph = np.empty_like(frames)
    emph[:, 1:] = frames[:, 1:] - k * frames[:, :-1]
    emph[:, 0] = (1.0 - k) * frames[:, 0]
    emph *= np.hamming(n)  # symmetric: 0.54 - 0.46 cos(2 pi n / (N - 1))
    spec = np.abs(rfft(emph, n=cfg.n_fft, axis=1))
    if cfg.spectrum == "power":
        spec **= 2
    fbank = spec @ mel_filterbank(cfg).T  # (T, F)
    log_fbank = np.log(np.maximum(fbank, cfg.floor))
    ceps = dct(log_fbank, type=2, norm="ortho", axis=1)[:, 1 : cfg.n_ceps + 1]
    if cfg.lifter > 0:
        i = np.arange(1, cfg.n_ceps + 1)
        ceps = ceps * (1.0 + (cfg.lifter / 2.0) * np.sin(np.pi * i / cfg.lifter))
    static.append(ceps)
    if cfg.use_energy:
        energy = np.einsum("tn,tn->t", frames, frames)
        static.append(np.log(np.maximum(energy, cfg.floor))[:, None])
    feats = np.concatenate(static, axis=1)
    if cfg.delta_window > 0:
        feats = np.concatenate([feats, _deltas(feats, cfg.delta_window)], axis=1)
    return feats
