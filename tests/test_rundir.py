"""Run directories: one writer at a time (an OS lock that dies with its process), and
directories left by kills at awkward moments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqprop.cli import main
from seqprop.errors import ConfigError, RunDirectoryLocked
from seqprop.training import Callback, Trainer
from seqprop.training.rundir import LOCK_NAME, RunDirectory
from tests.test_training import make_toy, toy_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy(tmp_path):
    return make_toy(tmp_path / "data")


def test_a_second_writer_is_refused_with_the_holders_pid(toy, tmp_path):
    run = tmp_path / "run"
    seen = {}

    class TryAgain(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 1:
                other = Trainer.resume(run)
                with pytest.raises(RunDirectoryLocked) as exc:
                    other.fit()
                seen["message"] = str(exc.value)

    Trainer(toy_config(toy, train={"max_epochs": 2}), run_dir=run, callbacks=[TryAgain()]).fit()
    assert f"in use by process {os.getpid()}" in seen["message"]
    assert str(run) in seen["message"] and "\n" not in seen["message"]
    # the first run was not disturbed: two epochs, two metrics lines
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    # and once it has ended the directory is free again
    Trainer.resume(run, overrides=["train.max_epochs=3"]).fit()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def test_cli_resume_while_another_process_trains_exits_2(toy, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(toy_config(toy, train={"max_epochs": 1}), run_dir=run).fit()
    holder = RunDirectory(run)
    holder.lock()
    try:
        rc = main(["train", "--resume", str(run), "--set", "train.max_epochs=2", "--no-progress"])
        err = capsys.readouterr().err
    finally:
        holder.release()
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and f"process {os.getpid()}" in err


def test_the_lock_dies_with_a_killed_process(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    code = (
        "import sys, time\n"
        "from seqprop.training.rundir import RunDirectory\n"
        "RunDirectory(sys.argv[1]).lock()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, cwd=REPO, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryLocked, match=f"process {proc.pid}"):
            RunDirectory(run).lock()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    other = RunDirectory(run)
    while True:  # the kernel drops the lock when the process's files close
        try:
            other.lock()
            break
        except RunDirectoryLocked:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    other.release()


def test_a_directory_killed_during_its_first_write_is_accepted(toy, tmp_path):
    """Only the lock and a temporary config file: a plain train starts afresh there."""
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text("12345\n")
    (run / f".config.toml.tmp-{os.getpid() + 1}").write_text("half a config")
    Trainer(toy_config(toy, train={"max_epochs": 1}), run_dir=run).fit()
    assert (run / "checkpoint.h5").exists()
    assert not any(".tmp-" in p.name for p in run.iterdir())


def test_a_directory_with_other_files_is_still_refused(toy, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        Trainer(toy_config(toy), run_dir=run).fit()


def test_resuming_a_finished_run_leaves_its_files_alone(toy, tmp_path):
    run = tmp_path / "run"
    Trainer(toy_config(toy, train={"max_epochs": 2}), run_dir=run).fit()
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != LOCK_NAME}
    time.sleep(0.01)
    trainer = Trainer.resume(run).fit()
    assert trainer.n_epochs_ == 2
    after = {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != LOCK_NAME}
    assert after == before
