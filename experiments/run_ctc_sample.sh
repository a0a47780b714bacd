#!/usr/bin/env bash
# CTC against framewise BLSTM on the 12-speaker TIMIT sample (Graves et al. 2006 in miniature).
#
#   experiments/run_ctc_sample.sh [SAMPLE_DIR] [--stage N] [--stop-stage N] [--workers N] [--out DIR]
#
# SAMPLE_DIR  the TIMIT sample (NLTK layout; default ../shared/data/timit-sample).
# Run from the repository root. Stages:
#   1  prepare: the sample -> data/timit-sample/{train,validation,test}.h5 with the split of
#      experiments/run_sample.sh (speaker lists in experiments/speakers/); the files hold the
#      frame targets and each utterance's phone sequence.
#   2  run: the grid experiments/configs/ctc/grid.toml (a CTC BLSTM and a framewise BLSTM,
#      38 blocks per direction, 3 seeds each) on a local dask cluster of --workers processes
#      (default 2) -> OUT (default runs/ctc-sample). About 10 minutes on 2 cores.
#   3  report: OUT -> experiments/RESULTS-ctc.md (phone error rates, 61 and 39 phones, next to
#      the 2006 paper's figures).
# Set SEQPROP to the command to run (default: `seqprop`, else `python -m seqprop`).
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

stage=1
stop_stage=3
workers=2
out=runs/ctc-sample
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
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

if [[ -n "${SEQPROP:-}" ]]; then
  read -r -a seqprop <<< "$SEQPROP"
elif command -v seqprop > /dev/null; then
  seqprop=(seqprop)
else
  seqprop=(python -m seqprop)
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  "$here/run_sample.sh" "$sample" --stage 1 --stop-stage 1
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  echo "== stage 2: run the grid -> $out"
  "${seqprop[@]}" experiments run "$here/configs/ctc/grid.toml" --out "$out" \
    --workers "$workers"
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
  echo "== stage 3: report -> $here/RESULTS-ctc.md"
  "${seqprop[@]}" experiments report "$out" --paper graves2006 \
    --markdown "$here/RESULTS-ctc.md" \
    --title "CTC against framewise BLSTM on the TIMIT sample"
fi
