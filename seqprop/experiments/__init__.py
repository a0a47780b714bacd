"""Grids of training runs (the paper's experiments), a runner on dask.distributed, a report.

Graves & Schmidhuber (2005) compare BLSTM, BRNN, LSTM and RNN with target
delays of 0-10 frames, and MLPs with time windows of 0-10 frames (section 5).
This package turns such a comparison into independent training runs, runs them
(in this process, or as jobs on a dask.distributed cluster) and aggregates
their results into ``RESULTS.md`` with figures (``experiments/README.md``).

==========================  ==================================================
:mod:`.grid`                grid files: reading, checking, expanding into runs
:mod:`.point`               one run: train, evaluate, ``result.json``
:mod:`.runner`              every unfinished run, on dask or in this process
:mod:`.files`               the files of a grid's output directory
:mod:`.results`             run directories into tables, grouped over seeds
:mod:`.report`              ``RESULTS.md``: the parts every grid gets
:mod:`.markdown`            number formats, the table of nets
:mod:`.figures`             matplotlib plumbing for the report's figures
:mod:`.graves2005`          the 2005 paper: published figures, findings,
                            its comparison and figures
==========================  ==================================================

Grid files
----------
A grid is a TOML file that lists experiments; each names a training
configuration (a TOML file that :func:`seqprop.config.load_config` reads,
relative to the grid file) and the values to vary::

    name = "small"
    description = "miniature reproduction on the TIMIT sample"
    seeds = [0, 1]                              # repeats of every grid point
    set = { "train.n_iter_no_change" = 20 }     # applied to every run

    [[experiment]]
    name = "lstm"                               # run names start with it
    label = "LSTM"                              # shown in the report
    config = "lstm.toml"
    vary = { "model.delay" = [0, 1, 2, 3] }     # cartesian product over keys
    set = { "train.max_epochs" = 200 }          # this experiment only
    seeds = [0, 1, 2]                           # replaces the grid's seeds

The values of a run's configuration come, last one winning, from: the
configuration file, the grid's ``set``, the experiment's ``set``, the
command line's ``--set``, the grid point's ``vary`` values and finally
``train.seed``. Run names are the experiment's name, one ``-<tag><value>``
per varied key (``d`` for ``model.delay``, ``w`` for ``model.window``, the key's
last part otherwise) and ``-s<seed>``: ``lstm-d3-s1``.

Relative data paths are taken relative to the directory the grid is loaded
from (the current directory), as ``seqprop train`` does.

Run directories
---------------
Each run trains into ``OUT/<run name>/`` (the trainer's files:
``config.toml``, ``metrics.jsonl``, ``checkpoint.h5``, ``best.h5``,
``test.json``) and, when it has finished, ``result.json``: the best model's
frame accuracy on the training, validation and test sets, epochs, timing and
the learning curve (:func:`run_point`). A run whose ``result.json`` exists is
skipped when the grid is run again; a run that was killed continues from its
checkpoint; a run that failed leaves ``error.txt`` (the traceback) and is
tried again on the next invocation. ``OUT/grid.json`` holds the expanded grid
and ``OUT/grid-runs.json`` a record of every invocation (command, wall time,
runs done, skipped and failed).
"""

from seqprop.experiments.files import (
    ERROR_NAME,
    GRID_NAME,
    INVOCATIONS_NAME,
    RESULT_FORMAT,
    RESULT_NAME,
)
from seqprop.experiments.graves2005 import (
    PAPER_RESULTS,
    Finding,
    curve_nets,
    findings,
    main_nets,
    paper_figures,
)
from seqprop.experiments.grid import Experiment, Grid, GridPoint, load_grid
from seqprop.experiments.point import run_point
from seqprop.experiments.report import PaperReport, write_report
from seqprop.experiments.results import (
    NetSummary,
    best_by_validation,
    collect_results,
    mean_curve,
    summarise,
)
from seqprop.experiments.runner import GridRun, run_grid

__all__ = [
    "ERROR_NAME",
    "GRID_NAME",
    "INVOCATIONS_NAME",
    "PAPER_RESULTS",
    "RESULT_FORMAT",
    "RESULT_NAME",
    "Experiment",
    "Finding",
    "Grid",
    "GridPoint",
    "GridRun",
    "NetSummary",
    "PaperReport",
    "best_by_validation",
    "collect_results",
    "curve_nets",
    "findings",
    "load_grid",
    "main_nets",
    "mean_curve",
    "paper_figures",
    "run_grid",
    "run_point",
    "summarise",
    "write_report",
]
