"""The MFCC front end against a deliberately naive re-computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqprop.errors import ConfigError, DataError
from seqprop.features import (
    FeatureConfig,
    feature_names,
    frame_centres,
    mel_filterbank,
    mfcc,
    n_frames_for,
)


def naive_mfcc(x: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Straight from the written conventions: loops, explicit sums, no scipy."""
    n_win, shift, n_fft, n_filt, n_ceps, lifter, k = 400, 160, 512, 26, 12, 22.0, 0.97

    def mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    # explicit triangles, linear in mel
    top = mel(sr / 2.0)
    centres = [top * j / (n_filt + 1) for j in range(n_filt + 2)]
    weights = [[0.0] * (n_fft // 2 + 1) for _ in range(n_filt)]
    for m in range(1, n_filt + 1):
        for b in range(n_fft // 2 + 1):
            mb = mel(b * sr / n_fft)
            if centres[m - 1] < mb <= centres[m]:
                weights[m - 1][b] = (mb - centres[m - 1]) / (centres[m] - centres[m - 1])
            elif centres[m] < mb < centres[m + 1]:
                weights[m - 1][b] = (centres[m + 1] - mb) / (centres[m + 1] - centres[m])

    n_frames = 1 + (len(x) - n_win) // shift
    static = []
    for t in range(n_frames):
        frame = [float(v) for v in x[t * shift : t * shift + n_win]]
        energy = sum(v * v for v in frame)
        emph = [(1 - k) * frame[0]] + [frame[i] - k * frame[i - 1] for i in range(1, n_win)]
        win = [
            emph[i] * (0.54 - 0.46 * math.cos(2 * math.pi * i / (n_win - 1))) for i in range(n_win)
        ]
        # DFT of the zero-padded frame via an explicit matrix (no FFT routine)
        bins = np.arange(n_fft // 2 + 1)[:, None]
        idx = np.arange(n_win)[None, :]
        arg = -2j * np.pi * bins * idx / n_fft
        spectrum = np.exp(arg) @ np.array(win)
        power = [abs(c) ** 2 for c in spectrum]
        logs = []
        for m in range(n_filt):
            e = sum(weights[m][b] * power[b] for b in range(len(power)))
            logs.append(math.log(max(e, 1.0)))
        row = []
        for i in range(1, n_ceps + 1):
            c = math.sqrt(2.0 / n_filt) * sum(
                logs[j - 1] * math.cos(math.pi * i * (j - 0.5) / n_filt)
                for j in range(1, n_filt + 1)
            )
            row.append(c * (1 + lifter / 2 * math.sin(math.pi * i / lifter)))
        row.append(math.log(max(energy, 1.0)))
        static.append(row)
    out = []
    for t in range(n_frames):
        d = []
        for j in range(len(static[0])):
            num = 0.0
            for th in (1, 2):
                ahead = static[min(t + th, n_frames - 1)][j]
                behind = static[max(t - th, 0)][j]
                num += th * (ahead - behind)
            d.append(num / 10.0)
        out.append(static[t] + d)
    return np.array(out)


@pytest.fixture(scope="module")
def signals():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1000, 400 + 160 * 9 + 77)
    t = np.arange(3200) / 16000
    sine = 8000 * np.sin(2 * np.pi * 440 * t + 0.3) + rng.normal(0, 5, t.size)
    return {"noise": noise, "sine": sine}


@pytest.mark.parametrize("name", ["noise", "sine"])
def test_matches_naive_computation(signals, name):
    x = signals[name]
    fast = mfcc(x)
    slow = naive_mfcc(x)
    assert fast.shape == slow.shape == (1 + (len(x) - 400) // 160, 26)
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-9)


def test_shapes_names_and_centres():
    cfg = FeatureConfig()
    assert cfg.window_length == 400 and cfg.shift == 160 and cfg.n_features == 26
    names = feature_names()
    assert len(names) == 26 and names[:2] == ["c1", "c2"] and names[12] == "logE"
    assert names[13] == "d_c1" and names[-1] == "d_logE"
    for n in (400, 559, 560, 16000, 16001):
        x = np.random.default_rng(n).normal(size=n)
        f = mfcc(x)
        assert f.shape == (n_frames_for(n), 26) == (1 + (n - 400) // 160, 26)
        assert f.dtype == np.float64 and np.all(np.isfinite(f))
    np.testing.assert_array_equal(frame_centres(4), [200, 360, 520, 680])
    no_deltas = FeatureConfig(delta_window=0, use_energy=False)
    assert mfcc(np.ones(1000), config=no_deltas).shape == (4, 12)
    assert feature_names(no_deltas) == [f"c{i}" for i in range(1, 13)]


def test_int16_input_equals_float():
    x = np.random.default_rng(3).integers(-3000, 3000, 4000).astype(np.int16)
    np.testing.assert_array_equal(mfcc(x), mfcc(x.astype(np.float64)))


def test_filterbank_shape_and_peaks():
    fb = mel_filterbank()
    assert fb.shape == (26, 257)
    assert np.all(fb >= 0) and np.all(fb.max(axis=1) <= 1.0)
    assert fb[:, 0].sum() == 0 and fb[:, -1].sum() == 0  # DC and Nyquist excluded
    assert np.all(np.diff(fb.argmax(axis=1)) >= 0)  # centres ascend


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0, 5000.0])
def test_pure_tone_peaks_in_its_mel_channel(freq):
    cfg = FeatureConfig()
    t = np.arange(4000) / 16000
    x = 10000 * np.sin(2 * np.pi * freq * t)
    # recompute the log filterbank through the public pieces: the channel whose
    # triangle is centred nearest the tone must carry the most energy
    from scipy.fft import rfft

    frame = x[:400].copy()
    frame[1:] -= 0.97 * x[:399]
    frame[0] *= 0.03
    frame *= np.hamming(400)
    power = np.abs(rfft(frame, 512)) ** 2
    energies = mel_filterbank(cfg) @ power
    mel = 2595 * np.log10(1 + freq / 700)
    centres = np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 28)[1:-1]
    assert np.argmax(energies) == np.argmin(np.abs(centres - mel))
    # and the cepstra of a tone differ from those of another tone
    assert not np.allclose(
        mfcc(x)[:, :12], mfcc(10000 * np.sin(2 * np.pi * 1.5 * freq * t))[:, :12]
    )


def test_energy_is_raw_frame_energy():
    x = np.random.default_rng(5).normal(0, 300, 2000)
    f = mfcc(x)
    expected = np.log([np.sum(x[160 * t : 160 * t + 400] ** 2) for t in range(f.shape[0])])
    np.testing.assert_allclose(f[:, 12], expected, rtol=1e-12)


def test_deltas_of_linear_ramp():
    # log energy rising linearly in time -> delta is the slope away from the edges
    cfg = FeatureConfig()
    n = 400 + 160 * 20
    gain = np.exp(np.arange(n) / 160 * 0.05)  # energy grows by exp(0.1) per frame
    x = gain * np.random.default_rng(0).choice([-1000.0, 1000.0], n)
    f = mfcc(x, config=cfg)
    assert np.allclose(f[3:-3, 25], 0.1, atol=2e-3)
    # edges replicated: the first delta uses c(0) for c(-1), c(-2)
    e = f[:, 12]
    assert f[0, 25] == pytest.approx((1 * (e[1] - e[0]) + 2 * (e[2] - e[0])) / 10)


def test_bad_signals():
    with pytest.raises(DataError, match="shorter than one analysis window"):
        mfcc(np.zeros(399))
    with pytest.raises(DataError, match="NaN or infinite"):
        mfcc(np.r_[np.zeros(500), np.nan])
    with pytest.raises(DataError, match="NaN or infinite"):
        mfcc(np.r_[np.zeros(500), np.inf])
    with pytest.raises(DataError, match="1-D"):
        mfcc(np.zeros((800, 2)))
    with pytest.raises(DataError, match="sample rate"):
        mfcc(np.zeros(800), sample_rate=8000)
    with pytest.raises(DataError, match="real"):
        mfcc(np.zeros(800, dtype=complex))
    # silence is fine: every energy is floored, features stay finite
    assert np.all(np.isfinite(mfcc(np.zeros(800))))


def test_bad_configs():
    with pytest.raises(ConfigError):
        FeatureConfig(n_fft=256)
    with pytest.raises(ConfigError):
        FeatureConfig(n_ceps=26)
    with pytest.raises(ConfigError):
        FeatureConfig(high_freq=9000)
    with pytest.raises(ConfigError):
        FeatureConfig(floor=0)
    with pytest.raises(ConfigError):
        FeatureConfig(spectrum="log")
