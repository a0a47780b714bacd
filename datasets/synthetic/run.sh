#!/usr/bin/env bash
# Synthetic speech corpus for seqprop (offline; a few seconds at the default size).
#
#   datasets/synthetic/run.sh [OUT_DIR] [--stage N] [--stop-stage N] [-- PREPARE_ARGS...]
#
# OUT_DIR    where the HDF5 files go (default: data/synthetic).
#
# Stages:
#   1  prepare: generate 200 / 50 / 50 utterances (seed 0) from disjoint speakers,
#      26 features per 10 ms frame and 25 phone classes -> OUT_DIR/train.h5,
#      validation.h5, test.h5.
#   2  inspect: print a summary of each file (sequences, frames, class histogram).
#
# Anything after "--" goes to `seqprop prepare synthetic` (e.g. -- --overwrite,
# -- --seed 3 --n-train 1000 --n-speakers 40 8 8).
# Set SEQPROP to the command to run (default: `seqprop`, else `python -m seqprop`).
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

stage=1
stop_stage=2
positional=()
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    -h|--help) usage ;;
    --) shift; extra=("$@"); break ;;
    *) positional+=("$1"); shift ;;
  esac
done
[[ ${#positional[@]} -le 1 ]] || usage
out="${positional[0]:-data/synthetic}"

if [[ -n "${SEQPROP:-}" ]]; then
  read -r -a seqprop <<< "$SEQPROP"
elif command -v seqprop > /dev/null; then
  seqprop=(seqprop)
else
  seqprop=(python -m seqprop)
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  echo "== stage 1: prepare the synthetic corpus -> $out"
  "${seqprop[@]}" prepare synthetic "$out" "${extra[@]}"
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  echo "== stage 2: inspect"
  shopt -s nullglob
  files=("$out"/*.h5)
  [[ ${#files[@]} -gt 0 ]] || { echo "no .h5 files in $out (run stage 1)" >&2; exit 2; }
  for f in "${files[@]}"; do
    "${seqprop[@]}" inspect "$f"
    echo
  done
fi
