"""The README's Python example runs as written, and its commands match .ci/run."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    net = namespace["net"]
    assert net.num_parameters == 101_245
    assert np.isfinite(namespace["loss"])
    errors = namespace["small"] and capsys.readouterr().out
    assert "hidden.0.fwd.W_hh" in errors


def test_ci_runs_the_readme_test_command():
    lines = README.read_text().splitlines()
    test_cmd = next(line.strip() for line in lines[:12] if "pytest" in line)
    ci = (README.parent / ".ci" / "run").read_text()
    pip_part, pytest_part = test_cmd.split("&& pip install", 1)[1].split("&&", 1)
    assert ("pip install" + pip_part).strip() in ci
    assert pytest_part.strip() in ci


def test_feature_list_names_every_command():
    import argparse

    from seqprop.cli import build_parser

    text = README.read_text()
    item = re.search(r"the\s+`seqprop` command \((.*?)\)", text, flags=re.S)
    assert item, "README's feature list does not describe the seqprop command"
    listed = set(re.findall(r"`(\w+)`", item.group(1)))
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) <= listed, set(sub.choices) - listed
