"""Fashion-MNIST loader, imbalanced subsets, class statistics and the predicted order."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from rfdiff.unet import fmnist as _fmnist
from rfdiff.unet.fmnist import (class_statistics, find_fashion_mnist, imbalanced_subset, load_fashion_mnist,
                       read_idx)
from rfdiff.model.mixture import class_counts, proportions_long_tail, proportions_step

from _fmnist_fixture import idx_bytes, write_tiny_fmnist

# The real files, if this machine has them where the library looks ($RFDIFF_FASHION_MNIST, then Debian's
# directory); a set but wrong $RFDIFF_FASHION_MNIST fails loudly here rather than skipping.
REAL = find_fashion_mnist() if os.environ.get(_fmnist.ENV_VAR) or _fmnist.DEBIAN_DIR.is_dir() else None


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / ("a.gz" if gz else "a")
    p.write_bytes(gzip.compress(idx_bytes(arr)) if gz else idx_bytes(arr))
    out = read_idx(p, 0x803)
    assert out.dtype == np.uint8 and np.array_equal(out, arr)


def test_read_idx_errors(tmp_path):
    arr = np.zeros((2, 3), dtype=np.uint8)
    p = tmp_path / "x"
    p.write_bytes(idx_bytes(arr, magic=0x0D02))  # float32 type code: not unsigned bytes
    with pytest.raises(ValueError, match="magic"):
        read_idx(p)
    p.write_bytes(idx_bytes(arr))
    with pytest.raises(ValueError, match="expected 0x00000803"):
        read_idx(p, 0x803)
    p.write_bytes(idx_bytes(arr)[:-1])
    with pytest.raises(ValueError, match="announces shape"):
        read_idx(p)
    p.write_bytes(idx_bytes(arr))
    with pytest.raises(ValueError, match="checksum mismatch"):
        read_idx(p, sha256="0" * 64)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read"):
        read_idx(tmp_path / "bad.gz")


def test_locate_order_and_message(tmp_path, monkeypatch):
    a = write_tiny_fmnist(tmp_path / "a")
    b = write_tiny_fmnist(tmp_path / "b", gz=False)
    monkeypatch.setattr(_fmnist, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setenv(_fmnist.ENV_VAR, str(b))
    assert find_fashion_mnist(a) == a  # explicit path beats the environment
    assert find_fashion_mnist() == b  # environment next
    monkeypatch.delenv(_fmnist.ENV_VAR)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        find_fashion_mnist()
    with pytest.raises(FileNotFoundError, match="RFDIFF_FASHION_MNIST"):
        find_fashion_mnist(tmp_path / "empty")
    monkeypatch.setattr(_fmnist, "DEBIAN_DIR", a)
    assert find_fashion_mnist() == a  # Debian's directory last


def test_load_tiny(tmp_path):
    d = write_tiny_fmnist(tmp_path / "d", n_train=7, n_test=3, gz=False)
    x, y = load_fashion_mnist(d, "train")
    assert x.shape == (14, 28, 28) and y.tolist() == [8] * 7 + [7] * 7
    xt, yt = load_fashion_mnist(d, "test")
    assert xt.shape == (6, 28, 28)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist(d, "valid")
    # a published checksum applies to the file of that name: a tiny file under that name is rejected
    gzd = write_tiny_fmnist(tmp_path / "g", n_train=7, n_test=3, gz=True)
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_fashion_mnist(gzd, "train", checksums=_fmnist.FASHION_MNIST_SHA256)
    assert load_fashion_mnist(gzd, "train", checksums=None)[0].shape == (14, 28, 28)
    (d / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(14, 11, dtype=np.uint8)))
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        load_fashion_mnist(d, "train")
    (d / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(13, dtype=np.uint8)))
    with pytest.raises(ValueError, match="14 images but labels"):
        load_fashion_mnist(d, "train")


def test_subsets():
    labels = np.repeat(np.arange(10), 200)
    idx = imbalanced_subset(labels, [8, 7, 1], counts=[5, 40, 17], seed=3)
    assert np.bincount(labels[idx], minlength=10)[[8, 7, 1]].tolist() == [5, 40, 17]
    assert len(np.unique(idx)) == idx.size
    assert np.array_equal(idx, imbalanced_subset(labels, [8, 7, 1], counts=[5, 40, 17], seed=3))
    assert not np.array_equal(idx, imbalanced_subset(labels, [8, 7, 1], counts=[5, 40, 17], seed=4))
    step = imbalanced_subset(labels, [8, 7], n=100, profile="step", minority_fraction=0.1, seed=0)
    assert [np.sum(labels[step] == c) for c in (8, 7)] == class_counts(proportions_step(2, 0.1), 100).tolist()
    lt = imbalanced_subset(labels, [0, 1, 2, 3], n=200, profile="long_tail", ratio=10.0, seed=0)
    got = [np.sum(labels[lt] == c) for c in range(4)]
    assert got == class_counts(proportions_long_tail(4, 10.0), 200).tolist()
    assert got[0] / got[-1] == pytest.approx(10.0, rel=0.1)
    bal = imbalanced_subset(labels, [2, 5], n=60, profile="balanced")
    assert np.bincount(labels[bal], minlength=10)[[2, 5]].tolist() == [30, 30]
    with pytest.raises(ValueError, match="class 8 has 200 examples"):
        imbalanced_subset(labels, [8], counts=[201])
    with pytest.raises(ValueError, match="profile"):
        imbalanced_subset(labels, [8, 7], n=10, profile="zipf")
    with pytest.raises(ValueError, match="distinct"):
        imbalanced_subset(labels, [8, 8], counts=[1, 1])
    with pytest.raises(ValueError, match="minority_fraction"):
        imbalanced_subset(labels, [8, 7], n=10, profile="step")


def test_class_statistics_against_brute_force():
    rng = np.random.default_rng(0)
    d = 12
    x = np.concatenate([rng.normal(0.3, 0.5, (400, d)), rng.normal(-0.2, 1.5, (300, d))]).reshape(-1, 3, 4)
    y = np.repeat([4, 9], [400, 300])
    st = class_statistics(x, y, [4, 9])
    flat = x.reshape(len(x), -1)
    for i, c in enumerate([4, 9]):
        assert st.variance[i] == pytest.approx(np.trace(np.cov(flat[y == c], rowvar=False)) / d, rel=1e-12)
    mu = np.stack([flat[y == c].mean(0) for c in (4, 9)])
    assert st.centroid_distance[0, 1] == pytest.approx(np.sum((mu[0] - mu[1]) ** 2) / d, rel=1e-12)
    assert st.centroid_gram[0, 1] == pytest.approx(mu[0] @ mu[1] / d, rel=1e-12)
    assert st.proportions.tolist() == pytest.approx([4 / 7, 3 / 7])
    centre = (400 * mu[0] + 300 * mu[1]) / 700
    assert st.centre_distance[1] == pytest.approx(np.sum((mu[1] - centre) ** 2) / d, rel=1e-12)
    # uint8 input is mapped to [-1, 1] first: a class of constant 255 images with one pixel flipped
    u8 = np.full((2, 2, 2), 255, dtype=np.uint8)
    u8[0, 0, 0] = 0
    st8 = class_statistics(u8, np.array([1, 1]), [1])
    assert st8.variance[0] == pytest.approx(2.0 / 4)  # one pixel, values ±1 → sample variance 2, /d = 4
    with pytest.raises(ValueError, match="at least two"):
        class_statistics(x[:1], y[:1], [4])


@pytest.mark.skipif(REAL is None, reason=f"Fashion-MNIST not installed (set {_fmnist.ENV_VAR} or install "
                                          "dataset-fashion-mnist)")
def test_real_fashion_mnist_checksums_and_statistics():
    x, y = load_fashion_mnist(REAL, "test")  # checksums verified by default
    assert x.shape == (10000, 28, 28) and np.bincount(y).tolist() == [1000] * 10
    st = class_statistics(x, y, [8, 7, 1])
    # Bag has the highest pixel variance of the three; Sneaker and Trouser are the low-variance pair
    assert st.variance[0] > 2 * st.variance[1] and st.variance[0] > 2 * st.variance[2]
