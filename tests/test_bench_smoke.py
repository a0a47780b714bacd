"""Smoke test of benchmarks/bench_speed.py: tiny networks, no torch, no timing assertions."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_speed", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(v) -> bool:
    return isinstance(v, float | int) and math.isfinite(v) and v > 0


def test_tiny_benchmark_returns_positive_figures_and_prints_tables(bench):
    report = bench.run_benchmark(
        nets=("blstm", "mlp"),
        dtypes=("float64",),
        modes=("online", "batch16"),
        use_torch=False,
        repeats=2,
        seconds=0.0,  # one step per timing
        seqprop_threads=(2, 1),
        hidden_sizes={"blstm": 4, "mlp": 5},
        input_size=3,
        num_classes=4,
        online_length=12,
        batch_size=3,
        min_length=4,
        max_length=9,
        memory=True,
        memory_lengths=(20, 40),
        memory_batch_sizes=(3,),
        cold_start=False,
    )
    rows = report["speed"]
    assert [(r["net"], r["mode"]) for r in rows] == [
        ("blstm", "online"),
        ("blstm", "batch16"),
        ("mlp", "online"),
        ("mlp", "batch16"),
    ]
    for r in rows:
        assert _positive(r["seqprop"]) and _positive(r["seqprop_1thread"])
        assert len(r["samples"]["seqprop:2"]) == 2
        assert r["torch_best"] is None and r["ratio"] is None
        assert r["frames_per_step"] <= r["padded_frames_per_step"]
    online = rows[0]
    assert online["frames_per_step"] == 12
    batch = rows[1]
    assert 3 * 4 <= batch["frames_per_step"] <= 3 * 9

    mem = report["memory"]
    assert [(m["batch_size"], m["frames"]) for m in mem][:2] == [(1, 20), (1, 40)]
    for m in mem:
        assert _positive(m["peak_bytes"]) and _positive(m["bytes_per_frame"])
    assert report["cold_start"] is None

    text = bench.format_report(report)
    assert "Training throughput" in text
    assert "blstm 4" in text and "mlp 5" in text
    assert "target" in text and "RNNLIB" in text
    assert "peak traced memory" in text
    json.dumps(report)  # everything in the report is JSON-serialisable


def test_command_line_quick_subset_writes_json(bench, tmp_path, capsys):
    out = tmp_path / "speed.json"
    rc = bench.main(
        [
            "--quick",
            "--no-torch",
            "--nets",
            "rnn",
            "--dtypes",
            "float32",
            "--modes",
            "online",
            "--seconds",
            "0",
            "--no-memory",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "rnn 275" in printed
    report = json.loads(out.read_text())
    (row,) = report["speed"]
    assert row["net"] == "rnn" and row["dtype"] == "float32" and _positive(row["seqprop"])


def test_bad_arguments_are_rejected(bench):
    with pytest.raises(ValueError, match="nets"):
        bench.run_benchmark(nets=("gru",), use_torch=False, memory=False, cold_start=False)
    with pytest.raises(ValueError, match="dtypes"):
        bench.run_benchmark(dtypes=("float16",), use_torch=False, memory=False, cold_start=False)


@pytest.mark.parametrize("threads", [1, 2])
def test_bench_ab_compares_two_checkouts(tmp_path, threads):
    """benchmarks/bench_ab.py on this checkout against itself: one row per configuration
    asked, a positive ratio, the metric of the thread count asked."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "ab.json"
    args = ["--a", str(root), "--b", str(root), "--rounds", "1", "--nets", "mlp"]
    args += ["--dtypes", "float32", "--modes", "online", "--seconds", "0.01"]
    args += ["--threads", str(threads), "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_ab.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert ("two threads" in proc.stdout) == (threads == 2)
    rows = json.loads(out.read_text())["rows"]
    assert [r["config"] for r in rows] == ["mlp float32 online"]
    assert _positive(rows[0]["ratio"])
