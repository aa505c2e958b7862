"""Fashion-MNIST: IDX loader, class-imbalanced subsets and the per-class statistics the theory needs.

Re-exported from :mod:`rfdiff.io`. The files are the original IDX files (gzip or not) of
zalandoresearch/fashion-mnist; they are located in this order:

1. an explicit ``path`` argument (a directory holding the four files),
2. the environment variable ``RFDIFF_FASHION_MNIST``,
3. Debian's ``/usr/share/datasets/fashion-mnist/`` (package ``dataset-fashion-mnist``),

otherwise a :class:`FileNotFoundError` says how to get them. IDX format (LeCun's MNIST page): a big-endian
header ``0x00 0x00 <dtype code> <ndim>`` followed by ``ndim`` uint32 sizes and the raw data; images are
``0x00000803`` (uint8, 3 dims), labels ``0x00000801`` (uint8, 1 dim).

Statistics (``theory_notes/07_unet.md``): images are mapped to ``x = 2·pixel/255 − 1 ∈ [−1, 1]^d``, d = 784;
for class c with images ``x^ν``: ``σ_c² = Tr Cov_c / d`` (the isotropic-equivalent class variance of
``rfdiff.model.mixture``), ``M_cc' = μ_c·μ_c'/d`` (the centroid Gram matrix, strong scaling) and
``D_cc' = ||μ_c − μ_c'||²/d``.

Example::

    >>> import numpy as np
    >>> from rfdiff.unet.fmnist import load_fashion_mnist, imbalanced_subset
    >>> y = np.repeat(np.arange(10), 100)                                 # stand-in labels, 100 per class
    >>> np.bincount(y[imbalanced_subset(y, classes=[8, 7], counts=[5, 45], seed=0)]).tolist()[7:]
    [45, 5]
    >>> x, y = load_fashion_mnist(split="train")                         # doctest: +SKIP
    >>> idx = imbalanced_subset(y, classes=[8, 7], counts=[50, 450], seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..model.mixture import class_counts, proportions_long_tail, proportions_step

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SHA256",
    "find_fashion_mnist",
    "read_idx",
    "load_fashion_mnist",
    "imbalanced_subset",
    "ClassStatistics",
    "class_statistics",
]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
# sha256 of the gzip files as distributed upstream and by Debian (checked against /usr/share/datasets copies).
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
ENV_VAR = "RFDIFF_FASHION_MNIST"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_HOWTO = (f"Fashion-MNIST not found. Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, "
          f"files land in {DEBIAN_DIR}/) or download the four *-ubyte.gz files from "
          f"https://github.com/zalandoresearch/fashion-mnist (data/fashion) and set {ENV_VAR}=<that directory>.")


def _locate(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def find_fashion_mnist(path=None) -> Path:
    """Directory holding the Fashion-MNIST files: ``path`` > ``$RFDIFF_FASHION_MNIST`` > Debian's directory.

    An explicit ``path`` or environment variable that does not hold the files is an error (never silently
    skipped in favour of the next candidate).
    """
    for origin, cand in (("path", path), (ENV_VAR, os.environ.get(ENV_VAR))):
        if cand:
            d = Path(cand)
            if _locate(d, _FILES["train"][0]) is None and _locate(d, _FILES["test"][0]) is None:
                raise FileNotFoundError(f"{origin}={str(d)!r} holds no Fashion-MNIST IDX files. {_HOWTO}")
            return d
    if _locate(DEBIAN_DIR, _FILES["train"][0]) is not None:
        return DEBIAN_DIR
    raise FileNotFoundError(_HOWTO)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_idx(path, expected_magic: int | None = None, sha256: str | None = None) -> np.ndarray:
    """Read one IDX file (gzip if its name ends in ``.gz``) into a uint8 array.

    Checks: the optional ``sha256`` of the file as stored, the magic number (``expected_magic``, e.g. 0x803 for
    images), the unsigned-byte type code and that the payload length equals the product of the header sizes.
    """
    path = Path(path)
    if sha256 is not None:
        got = _sha256(path)
        if got != sha256:
            raise ValueError(f"checksum mismatch for {path}: sha256 {got}, expected {sha256} "
                             "(corrupt or different file; pass checksums=None to skip)")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"cannot read IDX file {path}: {err}") from None
    if len(raw) < 4:
        raise ValueError(f"{path} is too short to be an IDX file")
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08x} (expected unsigned-byte data, 0x0000080N)")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{path}: magic number 0x{magic:08x}, expected 0x{expected_magic:08x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != size:
        raise ValueError(f"{path}: header announces shape {shape} ({size} bytes) but the file holds "
                         f"{len(raw) - header} data bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(path=None, split: str = "train",
                       checksums: Mapping[str, str] | None = FASHION_MNIST_SHA256) -> tuple[np.ndarray, np.ndarray]:
    """Load a Fashion-MNIST split as ``(images (n, 28, 28) uint8, labels (n,) uint8)``.

    ``checksums`` maps file names to sha256 (default: the published files; a file whose name is not in the
    mapping is not checked; ``None`` skips checks). Raises ``ValueError`` on a bad file and
    ``FileNotFoundError`` (saying how to get the data) when no copy is found.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = find_fashion_mnist(path)
    out = []
    for stem, magic in zip(_FILES[split], (0x803, 0x801)):
        f = _locate(directory, stem)
        if f is None:
            raise FileNotFoundError(f"{directory} lacks {stem}[.gz]. {_HOWTO}")
        out.append(read_idx(f, magic, (checksums or {}).get(f.name)))
    images, labels = out
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images have shape {images.shape}, expected (n, 28, 28)")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{images.shape[0]} images but labels have shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"labels must lie in 0..9, found {int(labels.max())}")
    return images, labels


def imbalanced_subset(labels, classes: Sequence[int], counts: Sequence[int] | None = None, *, n: int | None = None,
                      profile: str | None = None, ratio: float | None = None, minority_fraction: float | None = None,
                      num_minority: int = 1, seed: int = 0) -> np.ndarray:
    """Indices (sorted by class, in ``classes`` order) of a seeded class-imbalanced subset.

    Either explicit ``counts`` (one per class), or a total ``n`` with ``profile``: ``"balanced"``,
    ``"step"`` (the first ``num_minority`` classes hold ``minority_fraction`` of the data, see
    :func:`rfdiff.model.mixture.proportions_step`) or ``"long_tail"`` (exponential profile with imbalance ratio
    ``ratio`` = n_max/n_min, :func:`rfdiff.model.mixture.proportions_long_tail`). Per-class counts are
    ``rfdiff.model.mixture.class_counts(π, n)``. Sampling is without replacement within each class.
    """
    labels = np.asarray(labels)
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be distinct and non-empty, got {classes}")
    k = len(classes)
    if counts is not None:
        if profile is not None or n is not None:
            raise ValueError("give either counts or (n, profile), not both")
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != (k,) or np.any(counts < 0):
            raise ValueError(f"counts must be {k} non-negative integers, got {counts.tolist()}")
    else:
        if n is None or profile is None:
            raise ValueError("imbalanced_subset needs counts, or n and profile")
        if profile == "balanced":
            props = np.full(k, 1.0 / k)
        elif profile == "step":
            if minority_fraction is None:
                raise ValueError("profile 'step' needs minority_fraction")
            props = proportions_step(k, minority_fraction, num_minority)
        elif profile == "long_tail":
            if ratio is None:
                raise ValueError("profile 'long_tail' needs ratio")
            props = proportions_long_tail(k, ratio)
        else:
            raise ValueError(f"profile must be 'balanced', 'step' or 'long_tail', got {profile!r}")
        counts = np.asarray(class_counts(props, int(n)), dtype=np.int64)
    rng = np.random.default_rng(seed)
    picked = []
    for c, m in zip(classes, counts):
        pool = np.flatnonzero(labels == c)
        if m > pool.size:
            raise ValueError(f"class {c} has {pool.size} examples, {int(m)} requested")
        picked.append(np.sort(rng.choice(pool, size=int(m), replace=False)))
    return np.concatenate(picked).astype(np.int64)


class ClassStatistics(NamedTuple):
    """Per-class statistics in the theory's units (pixels in [−1, 1], d = number of pixels)."""

    classes: np.ndarray  # (K,) dataset labels
    counts: np.ndarray  # (K,)
    proportions: np.ndarray  # (K,) π_c
    variance: np.ndarray  # (K,) σ_c² = Tr Cov_c / d
    centroid_gram: np.ndarray  # (K, K) M_cc' = μ_c·μ_c'/d
    centroid_distance: np.ndarray  # (K, K) ||μ_c − μ_c'||²/d
    centre_distance: np.ndarray  # (K,) ||μ_c − μ̄||²/d, μ̄ = π-weighted mean of the centroids


def to_signed(images) -> np.ndarray:
    """uint8 pixels → float32 in [−1, 1] (x = 2 p/255 − 1)."""
    return np.asarray(images, dtype=np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)


def class_statistics(images, labels, classes: Sequence[int]) -> ClassStatistics:
    """Per-class proportions, variance, centroid Gram and distances (float64), images in [−1, 1] or uint8."""
    x = np.asarray(images)
    x = (to_signed(x) if x.dtype == np.uint8 else x).reshape(len(x), -1).astype(np.float64)
    labels = np.asarray(labels)
    d = x.shape[1]
    cnt, mus, var = [], [], []
    for c in classes:
        xc = x[labels == c]
        if xc.shape[0] < 2:
            raise ValueError(f"class {c} needs at least two examples for a variance, has {xc.shape[0]}")
        mu = xc.mean(axis=0)
        cnt.append(xc.shape[0])
        mus.append(mu)
        var.append(((xc - mu) ** 2).sum(axis=1).mean() * xc.shape[0] / (xc.shape[0] - 1) / d)
    mus = np.stack(mus)
    cnt = np.asarray(cnt, dtype=np.int64)
    props = cnt / cnt.sum()
    diff = mus[:, None, :] - mus[None, :, :]
    centre = props @ mus
    return ClassStatistics(np.asarray(classes, dtype=np.int64), cnt, props, np.asarray(var), mus @ mus.T / d,
                           (diff ** 2).sum(-1) / d, ((mus - centre) ** 2).sum(-1) / d)
