"""``seqprop bench``: runs, prints one row per configuration, rejects bad options."""

from seqprop.bench import make_batches, throughput
from seqprop.cli import main


def test_bench_command_prints_a_row(capsys):
    rc = main(
        [
            "bench",
            "--nets",
            "rnn",
            "--dtypes",
            "float32",
            "--modes",
            "online",
            "--seconds",
            "0.01",
            "--repeats",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    rows = [line for line in out.splitlines() if line.startswith("rnn")]
    assert len(rows) == 1
    assert float(rows[0].split()[-1].replace(",", "")) > 0


def test_bench_rejects_unknown_net(capsys):
    assert main(["bench", "--nets", "gru"]) == 2
    assert "unknown 'gru'" in capsys.readouterr().err


def test_throughput_and_batches_shapes():
    r = throughput("mlp", "float32", "batch16", hidden_size=8, seconds=0.01, repeats=2)
    assert r["frames_per_s"] > 0 and len(r["runs"]) == 2
    ((x, y, lengths),) = make_batches("float64", n_batches=1)
    assert x.shape[1] == 16 and (y[lengths.max() - 1 :, lengths.argmin()] == -1).all()
