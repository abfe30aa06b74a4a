"""Data: image decoding/encoding, degradations (HR -> LR) and datasets."""
