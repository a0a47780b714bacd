#!/usr/bin/env bash
# Miniature reproduction of Graves & Schmidhuber (2005) on the 12-speaker TIMIT sample.
#
#   experiments/run_sample.sh [SAMPLE_DIR] [--stage N] [--stop-stage N] [--workers N] [--out DIR]
#                          [-- RUN_ARGS...]
#
# SAMPLE_DIR  the TIMIT sample (NLTK layout, drN-speaker/ folders; default
#             ../shared/data/timit-sample).
# Run from the repository root. Stages:
#   1  prepare: features and labels of the sample -> data/timit-sample/{train,validation,test}.h5
#      (8 training, 2 validation, 2 test speakers: experiments/speakers/*.txt). One second.
#   2  run: the grid experiments/configs/small/grid.toml (140 runs: BLSTM, BRNN, LSTM and
#      RNN with delays 0-10, MLP with windows 0-10, BLSTM truncated, LSTM backwards, BLSTM
#      class-weighted; 5 seeds; the paper's unit functions) -> OUT (default runs/sample),
#      then its tanh variant configs/small-tanh/grid.toml -> OUT-tanh, on a local dask
#      cluster of --workers processes (default 2). Hours on 2 cores (the logistic RNNs
#      train slowly); extra arguments after -- go to `seqprop experiments run`, e.g.
#      -- --seeds 0,1 --only 'blstm*'. Finished runs are skipped when run again.
#   3  report: OUT (compared with OUT-tanh) -> experiments/RESULTS.md, OUT-tanh ->
#      experiments/RESULTS-tanh.md, figures in experiments/figures{,-tanh}/.
# Set SEQPROP to the command to run (default: `seqprop`, else `python -m seqprop`).
set -euo pipefail

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

stage=1
stop_stage=3
workers=2
out=runs/sample
positional=()
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --) shift; extra=("$@"); break ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
[[ ${#positional[@]} -le 1 ]] || usage
sample="${positional[0]:-../shared/data/timit-sample}"
here="experiments"
data=data/timit-sample

if [[ -n "${SEQPROP:-}" ]]; then
  read -r -a seqprop <<< "$SEQPROP"
elif command -v seqprop > /dev/null; then
  seqprop=(seqprop)
else
  seqprop=(python -m seqprop)
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  echo "== stage 1: prepare $sample -> $data"
  "${seqprop[@]}" prepare timit "$sample" "$data" --overwrite \
    --split "train=@$here/speakers/train.txt" \
    --split "validation=@$here/speakers/validation.txt" \
    --split "test=@$here/speakers/test.txt"
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  echo "== stage 2: run the grid -> $out, its tanh variant -> $out-tanh"
  "${seqprop[@]}" experiments run "$here/configs/small/grid.toml" --out "$out" \
    --workers "$workers" "${extra[@]}"
  "${seqprop[@]}" experiments run "$here/configs/small-tanh/grid.toml" --out "$out-tanh" \
    --workers "$workers" "${extra[@]}"
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
  echo "== stage 3: report -> $here/RESULTS.md, $here/RESULTS-tanh.md"
  "${seqprop[@]}" experiments report "$out" --markdown "$here/RESULTS.md" \
    --figures "$here/figures" --label "paper's functions" --compare "tanh=$out-tanh" \
    --title "Miniature reproduction on the TIMIT sample (the paper's unit functions)"
  "${seqprop[@]}" experiments report "$out-tanh" --markdown "$here/RESULTS-tanh.md" \
    --figures "$here/figures-tanh" \
    --title "Miniature reproduction on the TIMIT sample (tanh variant)"
fi
