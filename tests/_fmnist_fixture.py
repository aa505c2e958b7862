"""Tiny generated Fashion-MNIST-format IDX files for the loader and U-Net tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    magic = (0x0800 | arr.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.tobytes()


def tiny_images(n_per_class: int, seed: int, classes=(8, 7)):
    """Class 8: high pixel variance (uniform noise 0..255); class 7: low variance (a fixed stripe ± small noise)."""
    rng = np.random.default_rng(seed)
    imgs, labels = [], []
    for c in classes:
        if c == 8:
            x = rng.integers(0, 256, size=(n_per_class, 28, 28))
        else:
            base = np.zeros((28, 28))
            base[10:18, :] = 200
            x = np.clip(base + rng.normal(0, 10, size=(n_per_class, 28, 28)), 0, 255)
        imgs.append(x)
        labels.append(np.full(n_per_class, c))
    return np.concatenate(imgs).astype(np.uint8), np.concatenate(labels).astype(np.uint8)


def write_tiny_fmnist(directory: Path, n_train: int = 30, n_test: int = 12, gz: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = tiny_images(n, seed)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{split}-{kind}-ubyte"
            data = idx_bytes(arr)
            if gz:
                (directory / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)
    return directory
