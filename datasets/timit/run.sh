#!/usr/bin/env bash
# TIMIT recipe for seqprop (Graves & Schmidhuber 2005, section 4.1).
#
#   datasets/timit/run.sh TIMIT_DIR [OUT_DIR] [--stage N] [--stop-stage N] [-- PREPARE_ARGS...]
#
# TIMIT_DIR  the LDC distribution (the directory holding TRAIN/ and TEST/, or any
#            directory above it) or an NLTK-style sample (drN-speaker/ folders).
# OUT_DIR    where the HDF5 files go (default: data/timit).
#
# Stages:
#   1  prepare: features (12 MFCC + log energy + deltas = 26 per 10 ms frame) and
#      61-phone frame labels -> OUT_DIR/train.h5, validation.h5 (184 TRAIN utterances,
#      seed 0), test.h5 (the full TEST set, SA sentences left out). Takes a few
#      minutes for the full corpus.
#   2  inspect: print a summary of each file (sequences, frames, class histogram).
#
# Anything after "--" goes to `seqprop prepare timit` (e.g. -- --overwrite,
# -- --split test=@datasets/timit/core_test_speakers.txt --split train=...).
# Set SEQPROP to the command to run (default: `seqprop`, else `python -m seqprop`).
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

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
[[ ${#positional[@]} -ge 1 && ${#positional[@]} -le 2 ]] || usage
timit="${positional[0]}"
out="${positional[1]:-data/timit}"

if [[ -n "${SEQPROP:-}" ]]; then
  read -r -a seqprop <<< "$SEQPROP"
elif command -v seqprop > /dev/null; then
  seqprop=(seqprop)
else
  seqprop=(python -m seqprop)
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  echo "== stage 1: prepare $timit -> $out"
  "${seqprop[@]}" prepare timit "$timit" "$out" "${extra[@]}"
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
