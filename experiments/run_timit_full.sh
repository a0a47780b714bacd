#!/usr/bin/env bash
# Full-size reproduction of Graves & Schmidhuber (2005) on the LDC TIMIT corpus.
#
#   experiments/run_timit_full.sh TIMIT_DIR [--stage N] [--stop-stage N] [--workers N]
#                                 [--scheduler ADDRESS] [--data DIR] [--out DIR] [-- RUN_ARGS...]
#
# TIMIT_DIR  the LDC distribution (the directory holding TRAIN/ and TEST/, or above it).
# Run from the repository root. Stages:
#   1  prepare: `seqprop prepare timit TIMIT_DIR DIR` (default DIR data/timit): the paper's
#      split, 3,512 training utterances, 184 validation (held out of TRAIN, seed 0),
#      the 1,344 TEST utterances; SA sentences left out. A few minutes. Skipped when
#      DIR already holds train.h5, validation.h5 and test.h5.
#   2  run: the grid experiments/configs/full/grid.toml (36 runs: BLSTM, BRNN, LSTM and
#      RNN with target delays 0-10, MLP with windows 0-10, BLSTM truncated; seed 0) on a
#      local dask cluster of --workers processes (default 2), or on a running cluster
#      with --scheduler tcp://HOST:8786 -> OUT (default runs/full). Half a day or more
#      on a 2-core machine (see experiments/README.md); stop it any time and run the
#      stage again: finished runs are skipped, interrupted ones continue from their
#      checkpoints.
#   3  report: OUT -> experiments/RESULTS-full.md and experiments/figures-full/*.png.
# RUN_ARGS go to `seqprop experiments run`, e.g. -- --seeds 0,1,2 --only 'blstm*'.
# Set SEQPROP to the command to run (default: `seqprop`, else `python -m seqprop`).
set -euo pipefail

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

stage=1
stop_stage=3
workers=2
scheduler=""
data=data/timit
out=runs/full
positional=()
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --scheduler) scheduler="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) usage ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  [[ ${#positional[@]} -eq 1 ]] || usage
fi
here="experiments"

if [[ -n "${SEQPROP:-}" ]]; then
  read -r -a seqprop <<< "$SEQPROP"
elif command -v seqprop > /dev/null; then
  seqprop=(seqprop)
else
  seqprop=(python -m seqprop)
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  timit="${positional[0]}"
  if [[ -f "$data/train.h5" && -f "$data/validation.h5" && -f "$data/test.h5" ]]; then
    echo "== stage 1: $data already holds train.h5, validation.h5, test.h5: skipped"
  else
    echo "== stage 1: prepare $timit -> $data"
    "${seqprop[@]}" prepare timit "$timit" "$data"
  fi
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  echo "== stage 2: run the full grid -> $out"
  where=(--workers "$workers")
  [[ -z "$scheduler" ]] || where=(--scheduler "$scheduler")
  "${seqprop[@]}" experiments run "$here/configs/full/grid.toml" --out "$out" "${where[@]}" \
    --set "data.train=\"$data/train.h5\"" \
    --set "data.validation=\"$data/validation.h5\"" \
    --set "data.test=\"$data/test.h5\"" \
    "${extra[@]}"
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
  echo "== stage 3: report -> $here/RESULTS-full.md"
  "${seqprop[@]}" experiments report "$out" --markdown "$here/RESULTS-full.md" \
    --figures "$here/figures-full" --title "Full-size reproduction on TIMIT"
fi
