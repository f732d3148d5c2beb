"""Regenerate the offline model's splits: ``python -m rtfin_cli.sentiment.corpus``."""

from __future__ import annotations

from rtfin_cli.sentiment import DATA_DIR
from rtfin_cli.sentiment.corpus import heldout_corpus, sample, train_corpus, write_tsv_gz

TRAIN_SEED, HELDOUT_SEED, CALIB_SEED = 11, 22, 33
TRAIN_ROWS, HELDOUT_ROWS, CALIB_ROWS = 4000, 1500, 1000


def main() -> None:
    train = sample(train_corpus.FRAMES, TRAIN_SEED, TRAIN_ROWS)
    heldout = sample(heldout_corpus.FRAMES, HELDOUT_SEED, HELDOUT_ROWS, {t.lower() for _, t in train})
    taken = {t.lower() for _, t in train + heldout}
    # Calibration: the held-out generator with another seed, none of the held-out rows (one scalar is fitted)
    calib = sample(heldout_corpus.FRAMES, CALIB_SEED, CALIB_ROWS, taken)
    for name, rows in (("train", train), ("heldout", heldout), ("calib", calib)):
        path = DATA_DIR / f"sentiment_{name}.tsv.gz"
        write_tsv_gz(path, rows)
        print(f"wrote {path} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
