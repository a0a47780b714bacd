"""The TIMIT recipe: layouts, frame labels, splits, bad input, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")

from seqprop.cli import main  # noqa: E402
from seqprop.corpora.timit import (  # noqa: E402
    find_utterances,
    prepare_timit,
    read_audio,
    read_phn,
)
from seqprop.corpora.timit.phones import (  # noqa: E402
    core_test_speakers,
    data_file,
    fold_labels,
    fold_map,
    folded_phones,
    phones61,
)
from seqprop.data import open_dataset  # noqa: E402
from seqprop.errors import DataError  # noqa: E402
from seqprop.features import mfcc  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LDC_SPEAKERS = {"dr1-fvmh0": "train", "dr2-marc0": "train", "dr3-falk0": "test"}


# --------------------------------------------------------------------------- helpers


def independent_labels(phn: Path, n_samples: int) -> tuple[list[int], list[str]]:
    """Frame labels read straight from a .phn file: centre 160 t + 200, end exclusive."""
    segments = []
    for line in phn.read_text().splitlines():
        if line.strip():
            a, b, p = line.split()
            segments.append((int(a), int(b), p))
    n_frames = 1 + (n_samples - 400) // 160
    phones = sorted(
        "aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g gcl "
        "h# hh hv ih ix iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw ux v "
        "w y z zh".split()
    )
    labels = []
    for t in range(n_frames):
        c = 160 * t + 200
        hit = [p for a, b, p in segments if a <= c < b]
        labels.append(phones.index(hit[0]) if hit else -1)
    return labels, phones


def read_all(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with open_dataset(path) as ds:
        return {tag: ds[i] for i, tag in enumerate(ds.tags)}


def write_wav(path: Path, n: int, *, seed: int = 0, rate: int = 16000, fmt: str = "WAV") -> None:
    x = np.random.default_rng(seed).normal(0, 800, n).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, rate, format=fmt, subtype="PCM_16")


def write_phn(path: Path, rows: list[str]) -> None:
    path.write_text("".join(r + "\n" for r in rows))


GOOD_PHN = ["0 3000 h#", "3000 5200 sh", "5200 8000 iy", "8000 10000 h#"]


def make_flat_tree(root: Path) -> Path:
    """A tiny generated corpus in the flat layout: 2 speakers x 2 utterances (+ SA)."""
    for spk in ("dr1-faaa0", "dr2-mbbb0"):
        for k, utt in enumerate(("si100", "sx20", "sa1")):
            write_wav(root / spk / f"{utt}.wav", 10000, seed=k)
            write_phn(root / spk / f"{utt}.phn", GOOD_PHN)
    return root


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def prepared_sample(timit_sample_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("timit_all")
    report = prepare_timit(timit_sample_dir, out)
    return report, out


def test_sample_labels_match_phn_files(prepared_sample, timit_sample_dir):
    report, out = prepared_sample
    assert report.layout == "flat" and set(report.files) == {"all"}
    assert report.n_utterances["all"] == 96 and report.excluded_sa == 24
    with open_dataset(out / "all.h5") as ds:
        assert list(ds.class_names) == list(phones61())
        assert ds.input_size == 26 and ds.num_classes == 61
        tags = list(ds.tags)
        assert len(tags) == 96 and not any(t.split("/")[-1].startswith("sa") for t in tags)
        assert all(t.count("/") == 2 and t == t.lower() for t in tags)
        for i, tag in enumerate(tags):
            dialect, speaker, utt = tag.split("/")
            folder = timit_sample_dir / f"{dialect}-{speaker}"
            n_samples = sf.info(str(folder / f"{utt}.wav")).frames
            labels, phones = independent_labels(folder / f"{utt}.phn", n_samples)
            x, y = ds[i]
            assert x.shape == (len(labels), 26) and np.all(np.isfinite(x))
            np.testing.assert_array_equal(y, labels, err_msg=tag)
            assert list(ds.class_names) == phones
    # every phone occurs; frames after the last segment are unlabelled
    ys = np.concatenate([y for _, y in read_all(out / "all.h5").values()])
    assert set(np.unique(ys[ys >= 0])) == set(range(61))
    assert 0 < np.mean(ys == -1) < 0.05


def test_sample_features_equal_front_end(prepared_sample, timit_sample_dir):
    _, out = prepared_sample
    data = read_all(out / "all.h5")
    for tag in ("dr1/fvmh0/si836", "dr4/maeb0/sx180"):  # SPHERE and RIFF
        dialect, speaker, utt = tag.split("/")
        wav = timit_sample_dir / f"{dialect}-{speaker}" / f"{utt}.wav"
        samples, rate = sf.read(str(wav), dtype="int16")
        expected = mfcc(samples.astype(np.float64), rate)
        np.testing.assert_allclose(data[tag][0], expected.astype(np.float32), rtol=1e-6, atol=1e-4)


def test_sphere_file_read(timit_sample_dir):
    assert sf.info(str(timit_sample_dir / "dr1-fvmh0" / "si836.wav")).format == "NIST"
    x = read_audio(timit_sample_dir / "dr1-fvmh0" / "si836.wav")
    assert x.shape == (68813,) and np.all(x == np.round(x)) and np.abs(x).max() < 32768


def build_ldc_tree(sample: Path, root: Path) -> Path:
    """Upper-case LDC layout with NIST SPHERE audio, from three sample speakers."""
    for folder, subset in LDC_SPEAKERS.items():
        dialect, speaker = folder.split("-")
        dest = root / "TIMIT" / subset.upper() / dialect.upper() / speaker.upper()
        dest.mkdir(parents=True)
        for wav in sorted((sample / folder).glob("*.wav")):
            samples, rate = sf.read(str(wav), dtype="int16")
            stem = wav.stem.upper()
            sf.write(str(dest / f"{stem}.WAV"), samples, rate, format="NIST", subtype="PCM_16")
            (dest / f"{stem}.PHN").write_bytes(wav.with_suffix(".phn").read_bytes())
            (dest / f"{stem}.TXT").write_bytes(wav.with_suffix(".txt").read_bytes())
    return root


def test_ldc_and_flat_layouts_agree(timit_sample_dir, tmp_path):
    ldc = build_ldc_tree(timit_sample_dir, tmp_path / "ldc")
    assert sf.info(str(next((ldc / "TIMIT" / "TEST").rglob("*.WAV")))).format == "NIST"
    rep = prepare_timit(ldc, tmp_path / "out_ldc", n_validation=3, seed=7)
    assert rep.layout == "ldc" and set(rep.files) == {"train", "validation", "test"}
    assert rep.n_utterances == {"train": 13, "validation": 3, "test": 8}
    ldc_data = {}
    for split in rep.files:
        for tag, xy in read_all(rep.files[split]).items():
            subset = tag.split("/")[0]
            assert subset == ("test" if split == "test" else "train")
            ldc_data[tag.split("/", 1)[1]] = xy
    speakers = ",".join(f.split("-")[1] for f in LDC_SPEAKERS)
    flat = prepare_timit(timit_sample_dir, tmp_path / "out_flat", splits={"x": speakers})
    flat_data = read_all(flat.files["x"])
    assert flat.left_out == 96 - 24
    assert set(flat_data) == set(ldc_data) and len(flat_data) == 24
    for tag, (x, y) in flat_data.items():
        np.testing.assert_array_equal(x, ldc_data[tag][0], err_msg=tag)
        np.testing.assert_array_equal(y, ldc_data[tag][1], err_msg=tag)
    # the validation draw is deterministic and depends on the seed
    again = prepare_timit(ldc, tmp_path / "again", n_validation=3, seed=7)
    assert read_all(again.files["validation"]).keys() == read_all(rep.files["validation"]).keys()
    draws = set()
    for seed in range(4):
        r = prepare_timit(ldc, tmp_path / f"seed{seed}", n_validation=3, seed=seed)
        draws.add(tuple(sorted(read_all(r.files["validation"]))))
    assert len(draws) > 1
    # too few TRAIN utterances for the paper's 184
    with pytest.raises(DataError, match="not enough to hold out 184"):
        prepare_timit(ldc, tmp_path / "default")


# --------------------------------------------------------------------------- splits


def test_split_specs(tmp_path):
    src = make_flat_tree(tmp_path / "src")
    lst = tmp_path / "list.txt"
    lst.write_text("# test utterances\ndr1/faaa0/si100\nfaaa0/sx20  # comment\n")
    rep = prepare_timit(src, tmp_path / "o", splits={"train": "dr2-mbbb0", "test": f"@{lst}"})
    assert set(read_all(rep.files["test"])) == {"dr1/faaa0/si100", "dr1/faaa0/sx20"}
    assert set(read_all(rep.files["train"])) == {"dr2/mbbb0/si100", "dr2/mbbb0/sx20"}
    assert rep.left_out == 0
    # faaa0's utterances are claimed by both splits
    with pytest.raises(DataError, match="named by two splits"):
        prepare_timit(src, tmp_path / "o2", splits={"train": "faaa0", "test": f"@{lst}"})
    with pytest.raises(DataError, match="no speaker or utterance 'nobody'"):
        prepare_timit(src, tmp_path / "o3", splits={"train": "faaa0,nobody"})
    with pytest.raises(DataError, match="SA sentences"):
        prepare_timit(src, tmp_path / "o4", splits={"train": "faaa0/sa1"})
    with pytest.raises(DataError, match="list file"):
        prepare_timit(src, tmp_path / "o5", splits={"train": f"@{tmp_path / 'missing.txt'}"})
    with pytest.raises(DataError, match="invalid split name"):
        prepare_timit(src, tmp_path / "o6", splits={"../x": "faaa0"})
    rep = prepare_timit(src, tmp_path / "o7", include_sa=True)
    assert rep.n_utterances == {"all": 6} and rep.excluded_sa == 0
    rep = prepare_timit(src, tmp_path / "o8")
    assert rep.n_utterances == {"all": 4} and rep.excluded_sa == 2


def test_gaps_give_unlabelled_frames(tmp_path):
    src = tmp_path / "src"
    write_wav(src / "dr1-faaa0" / "si1.wav", 4000)
    write_phn(src / "dr1-faaa0" / "si1.phn", ["0 1000 h#", "1500 2000 s", "2000 3000 iy"])
    rep = prepare_timit(src, tmp_path / "o")
    ((x, y),) = read_all(rep.files["all"]).values()
    centres = 160 * np.arange(len(y)) + 200
    s, iy, h = phones61().index("s"), phones61().index("iy"), phones61().index("h#")
    expected = np.where(
        centres < 1000,
        h,
        np.where(centres < 1500, -1, np.where(centres < 2000, s, np.where(centres < 3000, iy, -1))),
    )
    np.testing.assert_array_equal(y, expected)
    assert (y == -1).any()


# --------------------------------------------------------------------------- bad input


def expect_error(src: Path, out: Path, match: str, **kw) -> None:
    with pytest.raises(DataError, match=match):
        prepare_timit(src, out, **kw)
    assert not out.exists() or not any(out.iterdir()), "a failed prepare left files behind"


def test_missing_and_empty_directories(tmp_path):
    expect_error(tmp_path / "nope", tmp_path / "o", "does not exist")
    (tmp_path / "empty").mkdir()
    expect_error(tmp_path / "empty", tmp_path / "o", "no TIMIT utterances")
    (tmp_path / "file").write_text("x")
    expect_error(tmp_path / "file", tmp_path / "o", "not a directory")
    junk = tmp_path / "junk" / "somewhere"
    write_wav(junk / "a.wav", 1000)
    expect_error(tmp_path / "junk", tmp_path / "o", "no TIMIT utterances")


@pytest.mark.parametrize("missing", ["wav", "phn"])
def test_incomplete_pairs(tmp_path, missing):
    src = make_flat_tree(tmp_path / "src")
    victim = src / "dr1-faaa0" / f"sx20.{missing}"
    victim.unlink()
    other = "phn" if missing == "wav" else "wav"
    with pytest.raises(DataError) as info:
        prepare_timit(src, tmp_path / "o")
    msg = str(info.value)
    assert str(src / "dr1-faaa0" / f"sx20.{other}") in msg and f"sx20.{missing}" in msg
    assert not (tmp_path / "o").exists()
    rep = prepare_timit(src, tmp_path / "o", skip_incomplete=True)
    assert rep.n_utterances == {"all": 3} and len(rep.skipped) == 1


def test_mixed_layouts(tmp_path):
    src = make_flat_tree(tmp_path / "src")
    write_wav(src / "TRAIN" / "DR1" / "MCCC0" / "SI5.WAV", 5000)
    write_phn(src / "TRAIN" / "DR1" / "MCCC0" / "SI5.PHN", ["0 5000 h#"])
    expect_error(src, tmp_path / "o", "mixes the LDC layout")


def corrupt_audio_cases(path: Path) -> dict[str, tuple]:
    return {
        "garbage": (lambda: path.write_bytes(b"not audio at all" * 100), "cannot read audio"),
        "truncated_riff": (
            lambda: (write_wav(path, 10000), path.write_bytes(path.read_bytes()[:8000])),
            "truncated",
        ),
        "truncated_sphere": (
            lambda: (
                write_wav(path, 10000, fmt="NIST"),
                path.write_bytes(path.read_bytes()[:9000]),
            ),
            "truncated",
        ),
        "empty_file": (lambda: path.write_bytes(b""), "cannot read audio"),
        "rate_8k": (lambda: write_wav(path, 10000, rate=8000), "sample rate 8000"),
        "stereo": (
            lambda: sf.write(str(path), np.zeros((10000, 2), np.int16), 16000, subtype="PCM_16"),
            "2 channels",
        ),
        "too_short": (lambda: write_wav(path, 300), "shorter than one analysis window"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "garbage",
        "truncated_riff",
        "truncated_sphere",
        "empty_file",
        "rate_8k",
        "stereo",
        "too_short",
    ],
)
def test_bad_audio(tmp_path, case):
    src = make_flat_tree(tmp_path / "src")
    wav = src / "dr2-mbbb0" / "si100.wav"
    make, match = corrupt_audio_cases(wav)[case]
    make()
    if case == "too_short":
        write_phn(wav.with_suffix(".phn"), ["0 300 h#"])
    with pytest.raises(DataError, match=match) as info:
        prepare_timit(src, tmp_path / "o", splits={"a": "faaa0", "b": "mbbb0"})
    assert str(wav) in str(info.value)
    # split "a" was complete, but nothing is left behind (not even the created directory)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("rows", "line", "match"),
    [
        (["0 3000 h#", "2000 5000 s"], 2, "overlaps"),
        (["3000 5000 s", "0 3000 h#"], 2, "not sorted"),
        (["0 3000 h#", "3000 3000 s"], 2, "not after its start"),
        (["-5 3000 h#"], 1, "negative"),
        (["0 3000 h#", "3000 10401 s"], 2, "past the end of the audio"),
        (["0 10000 h#", "10000 10300 s"], 2, "past the end of the audio"),
        (["0 3000 h#", "3000 5000 xx"], 2, "unknown phone 'xx'"),
        (["0 3000"], 1, "expected 'start end phone'"),
        (["0 3e3 h#"], 1, "integers"),
        ([], None, "no phone segments"),
    ],
)
def test_bad_phn(tmp_path, rows, line, match):
    src = make_flat_tree(tmp_path / "src")
    phn = src / "dr1-faaa0" / "si100.phn"
    write_phn(phn, rows)
    with pytest.raises(DataError, match=match) as info:
        prepare_timit(src, tmp_path / "o")
    where = f"{phn}, line {line}" if line else str(phn)
    assert where in str(info.value)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_read_phn_non_text(tmp_path):
    phn = tmp_path / "x.phn"
    phn.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not a TIMIT .phn"):
        read_phn(phn)


def test_existing_output_needs_overwrite(tmp_path):
    src = make_flat_tree(tmp_path / "src")
    prepare_timit(src, tmp_path / "o")
    with pytest.raises(DataError, match="already exists"):
        prepare_timit(src, tmp_path / "o")
    assert prepare_timit(src, tmp_path / "o", overwrite=True).n_utterances == {"all": 4}


def test_case_insensitive_names_and_other_files_ignored(tmp_path):
    src = tmp_path / "src"
    write_wav(src / "DR1-FAAA0" / "SI100.WAV", 10000)
    write_phn(src / "DR1-FAAA0" / "SI100.PHN", GOOD_PHN)
    write_wav(src / "DR1-FAAA0" / "SI100.WAV.wav", 10000)  # extra copies some redistributions add
    corpus = find_utterances(src)
    assert [u.tag for u in corpus.utterances] == ["dr1/faaa0/si100"]
    assert len(corpus.ignored) == 1


# --------------------------------------------------------------------------- CLI


def test_cli_bad_directory(tmp_path, capsys):
    rc = main(["prepare", "timit", str(tmp_path / "nope"), str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "error" in err and "does not exist" in err
    assert "Traceback" not in err


def test_cli_prepare_and_summary(tmp_path, capsys):
    src = make_flat_tree(tmp_path / "src")
    rc = main(["prepare", "timit", str(src), str(tmp_path / "o"), "--split", "tr=faaa0"])
    out = capsys.readouterr().out
    assert (
        rc == 0
        and "2 utterances" in out
        and "2 SA utterances" in out
        and "2 utterances named by no" in out
    )
    assert (tmp_path / "o" / "tr.h5").exists()


# --------------------------------------------------------------------------- recipe files


def test_recipe_data_files():
    phones = phones61()
    assert len(phones) == 61 and list(phones) == sorted(phones) and "h#" in phones
    assert len(folded_phones(39)) == 39 and len(folded_phones(48)) == 48
    m = fold_map(39)
    assert m["q"] is None and m["ao"] == "aa" and m["h#"] == "sil" and m["ux"] == "uw"
    assert m["zh"] == "sh" and m["axr"] == "er" and m["en"] == "n" and m["pcl"] == "sil"
    assert fold_map(48)["pcl"] == "cl" and fold_map(48)["bcl"] == "vcl"
    y = np.array([-1, phones.index("q"), phones.index("ix"), phones.index("iy")])
    np.testing.assert_array_equal(
        fold_labels(y), [-1, -1, folded_phones().index("ih"), folded_phones().index("iy")]
    )
    assert len(core_test_speakers()) == 24 and len(set(core_test_speakers())) == 24
    for name in ("phones61.txt", "phones61-48-39.txt", "core_test_speakers.txt"):
        link = REPO / "datasets" / "timit" / name
        if link.exists():  # the source tree (not an installed package)
            assert link.read_bytes() == data_file(name).read_bytes()


def test_last_segment_slightly_past_the_audio_is_clipped(tmp_path):
    phn = tmp_path / "x.phn"
    phn.write_text("0 3000 h#\n3000 10200 s\n")
    starts, ends, classes = read_phn(phn, n_samples=10000)
    assert ends[-1] == 10000


def test_sample_phone_sequences_match_phn_files(prepared_sample, timit_sample_dir):
    """Each utterance's labels are its .phn phones in order, as framewise class indices."""
    _, out = prepared_sample
    index = {p: i for i, p in enumerate(phones61())}
    with open_dataset(out / "all.h5") as ds:
        assert ds.label_sequences is not None
        for i, tag in enumerate(ds.tags):
            dialect, speaker, utt = tag.split("/")
            phn = timit_sample_dir / f"{dialect}-{speaker}" / f"{utt}.phn"
            want = [
                index[line.split()[2].lower()]
                for line in phn.read_text().splitlines()
                if line.strip()
            ]
            np.testing.assert_array_equal(ds.labels(i), want, err_msg=tag)
            y = ds[i][1]
            assert set(np.unique(y[y >= 0])) <= set(want)
