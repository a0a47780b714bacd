"""Write the UEA BasicMotions benchmark, as the aeon package ships it, to .npz files.

    pip install aeon
    python datasets/basicmotions/to_npz.py OUT_DIR

writes OUT_DIR/train.npz and OUT_DIR/test.npz (the archive's own train/test split:
40 + 40 recordings, 6 channels, 100 frames each, 4 classes) in the layout
`seqprop prepare arrays` reads: 'inputs' an object array of (T, 6) sequences,
'seq_targets' the class name of each recording, 'feature_names', 'tags'.
aeon is needed only here; seqprop does not depend on it.
"""

import sys
from pathlib import Path

import numpy as np


def main(out_dir: str) -> None:
    from aeon.datasets import load_basic_motions

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    channels = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
    for split in ("train", "test"):
        X, y = load_basic_motions(split=split)  # X (N, 6, 100), y (N,) class names
        inputs = np.empty(len(X), dtype=object)
        for i, series in enumerate(X):
            inputs[i] = np.ascontiguousarray(series.T, dtype=np.float32)  # (T, I)
        np.savez(
            out / f"{split}.npz",
            inputs=inputs,
            seq_targets=np.asarray(y, dtype=str),
            feature_names=np.array(channels),
            tags=np.array([f"{split}/{i:03d}" for i in range(len(X))]),
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
