#!/usr/bin/env bash
# UEA BasicMotions (whole-sequence classification) with seqprop's command line alone.
#
#   pip install aeon            # ships the benchmark; needed by stage 1 only
#   datasets/basicmotions/run.sh [OUT_DIR]
#
# OUT_DIR (default data/basicmotions): where the .npz and HDF5 files go; the run
# directory is runs/basicmotions. Stages:
#   1  to_npz.py: the archive's train (40) and test (40) recordings -> OUT_DIR/*.npz
#   2  seqprop prepare arrays: train.npz -> train.h5 + validation.h5 (a quarter of the
#      training recordings, stratified by class, seed 0); test.npz -> test.h5
#   3  seqprop train config.toml (BLSTM 16 + sequence head, mean pooling)
#   4  seqprop evaluate on the test set
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-data/basicmotions}"
python "$here/to_npz.py" "$out"
seqprop prepare arrays "$out/train.npz" "$out" --validation 0.25 --seed 0 --overwrite
seqprop prepare arrays "$out/test.npz" "$out" --name test --overwrite
seqprop train "$here/config.toml" --run-dir runs/basicmotions --overwrite \
  --set data.train="$out/train.h5" --set data.validation="$out/validation.h5" \
  --set data.test="$out/test.h5"
seqprop evaluate runs/basicmotions "$out/test.h5"
