"""Tests for xgrad._datasets.mnist: the shipped MNIST copy, IDX checks, search order, download;
a file of the other split or data set named as such, not as a damaged one.

Nothing here reaches the network: an autouse fixture replaces ``urlopen`` with a
guard that serves ``file://`` URLs only. Corruption and search-order tests use
tiny IDX files written here, whose checksums are put into the module's table.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import xgrad
import xgrad._datasets.idx as _idx
import xgrad._datasets.mnist as _mnist
from xgrad._datasets.mnist import DatasetError, DatasetNotFoundError, load_mnist

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
SHIPPED = Path(_mnist.__file__).resolve().parents[1] / "_data" / "mnist"
IMG, LBL = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMG, TEST_LBL = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
STEMS = (IMG, LBL, TEST_IMG, TEST_LBL)
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
REAL_URLOPEN = urllib.request.urlopen


# --- tiny IDX files --------------------------------------------------------

def idx_images(n: int, *, magic: int = 0x803, count: int | None = None,
               rows: int = 28, cols: int = 28, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (n, rows, cols), np.uint8)
    header = struct.pack(">4I", magic, n if count is None else count, rows, cols)
    return header + pixels.tobytes()


def idx_labels(labels: tuple[int, ...], *, magic: int = 0x801,
               count: int | None = None) -> bytes:
    header = struct.pack(">2I", magic, len(labels) if count is None else count)
    return header + bytes(labels)


def tiny_raw(train: tuple[int, ...] = (5, 0, 4, 1, 9),
             test: tuple[int, ...] = (7, 2, 1)) -> dict[str, bytes]:
    return {IMG: idx_images(len(train), seed=1), LBL: idx_labels(train),
            TEST_IMG: idx_images(len(test), seed=2), TEST_LBL: idx_labels(test)}


def write_set(folder: Path, raw: dict[str, bytes], *, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, data in raw.items():
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / stem).write_bytes(data)
    return folder


def flipped(data: bytes, at: int = 100) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def loaded_from(caplog: pytest.LogCaptureFixture) -> str:
    messages = [r.getMessage() for r in caplog.records if r.name == "xgrad"]
    return [m for m in messages if m.startswith("loading")][-1]


class Opener:
    """Stands in for urlopen: records each URL and serves file:// ones only."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.timeouts: list[float | None] = []

    def __call__(self, request, timeout=None):
        url = request.full_url if hasattr(request, "full_url") else request
        self.urls.append(url)
        self.timeouts.append(timeout)
        if not url.startswith("file:"):
            raise urllib.error.URLError(f"network disabled in tests: {url}")
        return REAL_URLOPEN(request, timeout=timeout)


@pytest.fixture(autouse=True)
def opener(monkeypatch: pytest.MonkeyPatch) -> Opener:
    fake = Opener()
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return fake


def isolate(mp: pytest.MonkeyPatch, tmp: Path) -> Path:
    """Empty every place but the shipped copy; return the MNIST cache folder."""
    mp.delenv("XGRAD_DATA_DIR", raising=False)
    mp.setenv("XDG_CACHE_HOME", str(tmp / "xdg"))
    mp.setattr(_mnist, "_SYSTEM_DIR", tmp / "usr-share-datasets")
    mp.setattr(_mnist, "MIRRORS", {"mnist": (), "fashion-mnist": ()})
    return tmp / "xdg" / "xgrad" / "mnist"


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Isolated from the machine, shipped copy hidden; the MNIST cache folder."""
    monkeypatch.setattr(_mnist, "_PACKAGE_DIR", tmp_path / "package")
    return isolate(monkeypatch, tmp_path)


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch):
    """Put the checksums of some raw files into the module's table."""
    def register(raw: dict[str, bytes], dataset: str = "mnist") -> None:
        sums = {stem: hashlib.sha256(data).hexdigest() for stem, data in raw.items()}
        monkeypatch.setitem(_mnist.SHA256, dataset, sums)
    return register


# --- the MNIST copy shipped in the package ---------------------------------

@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog):
    isolate(monkeypatch, tmp_path)
    caplog.set_level(logging.INFO, logger="xgrad")
    return lambda **kw: load_mnist(download=False, **kw)


def test_shipped_default_layout(shipped, caplog):
    (x, t), (x_test, t_test) = shipped()
    assert "copy shipped with xgrad" in loaded_from(caplog)
    assert str(SHIPPED) in loaded_from(caplog)
    assert (x.shape, x.dtype, x_test.shape, x_test.dtype) == (
        (60000, 784), np.float32, (10000, 784), np.float32)
    assert (t.shape, t.dtype, t_test.shape, t_test.dtype) == (
        (60000,), np.int64, (10000,), np.int64)
    assert x.min() == 0.0
    assert x.max() == 1.0
    assert t[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_shipped_unnormalized_and_unflattened(shipped):
    (x, _), (x_test, _) = shipped(normalize=False, flatten=False)
    assert (x.shape, x.dtype, x_test.shape) == ((60000, 1, 28, 28), np.uint8,
                                                (10000, 1, 28, 28))
    assert (int(x.min()), int(x.max())) == (0, 255)
    (x_norm, _), _ = shipped(normalize=True, flatten=True)
    np.testing.assert_array_equal(x_norm, x.reshape(60000, 784) / np.float32(255))


def test_shipped_one_hot(shipped):
    (_, t), (_, t_test) = shipped(normalize=False, one_hot_label=True)
    (_, labels), (_, labels_test) = shipped(normalize=False)
    for one_hot, plain in ((t, labels), (t_test, labels_test)):
        assert one_hot.shape == (len(plain), 10)
        assert one_hot.dtype == np.float32
        np.testing.assert_array_equal(one_hot.sum(axis=1), 1.0)
        assert set(np.unique(one_hot).tolist()) == {0.0, 1.0}
        np.testing.assert_array_equal(one_hot.argmax(axis=1), plain)


def test_shipped_label_counts(shipped):
    (_, t), (_, t_test) = shipped(normalize=False)
    assert np.bincount(t, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(t_test, minlength=10).tolist() == MNIST_TEST_COUNTS


@pytest.mark.parametrize(("normalize", "one_hot"), [(True, False), (False, True)])
def test_results_are_fresh_copies(shipped, normalize, one_hot):
    (x, t), (x_test, t_test) = shipped(normalize=normalize, one_hot_label=one_hot)
    before = [a.copy() for a in (x, t, x_test, t_test)]
    for a in (x, t, x_test, t_test):
        a[...] = 7
    (x2, t2), (x2_test, t2_test) = shipped(normalize=normalize, one_hot_label=one_hot)
    for old, new, mutated in zip(before, (x2, t2, x2_test, t2_test),
                                 (x, t, x_test, t_test), strict=True):
        np.testing.assert_array_equal(new, old)
        assert new.flags.writeable
        assert not np.shares_memory(new, mutated)


def test_shipped_files_are_the_originals():
    shipped_files = sorted(p.name for p in SHIPPED.glob("*.gz"))
    assert shipped_files == sorted(f"{s}.gz" for s in STEMS)
    licence = (SHIPPED / "LICENSE").read_text()
    assert "CC BY-SA 3.0" in licence
    assert "LeCun" in licence
    sums = SHARED / "mnist" / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip(f"no {sums} to compare the shipped .gz files with")
    for line in sums.read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_checksum_table_matches_shared_list(dataset):
    sums = SHARED / dataset / "SHA256SUMS.raw"
    if not sums.is_file():
        pytest.skip(f"no {sums} to compare the checksum table with")
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines())
    assert listed == _mnist.SHA256[dataset]


# --- Fashion-MNIST from the shared data sets --------------------------------

def _fashion_root() -> Path:
    env = os.environ.get("XGRAD_DATA_DIR")
    for root in ([Path(env)] if env else []) + [SHARED]:
        if (root / "fashion-mnist" / f"{IMG}.gz").is_file():
            return root
    pytest.skip("Fashion-MNIST not available: set XGRAD_DATA_DIR to a folder "
                "with a fashion-mnist/ subfolder holding its IDX files")


@pytest.mark.parametrize("how", ["XGRAD_DATA_DIR", "data_dir"])
def test_fashion_mnist(monkeypatch, tmp_path, how):
    root = _fashion_root()
    isolate(monkeypatch, tmp_path)
    if how == "XGRAD_DATA_DIR":
        monkeypatch.setenv("XGRAD_DATA_DIR", str(root))
        kwargs = {"dataset": "fashion-mnist"}
    else:
        kwargs = {"dataset": "fashion_mnist", "data_dir": str(root)}
    (x, t), (x_test, t_test) = load_mnist(normalize=False, download=False, **kwargs)
    assert (x.shape, x.dtype, x_test.shape) == ((60000, 784), np.uint8, (10000, 784))
    assert np.bincount(t).tolist() == [6000] * 10
    assert np.bincount(t_test).tolist() == [1000] * 10
    assert t[0] == 9  # an ankle boot; MNIST's first label is 5


# --- corrupt files -----------------------------------------------------------

HEADER_CASES = {
    "bad image magic": (IMG, lambda: idx_images(5, magic=0x804, seed=1),
                        r"wrong magic number.*expected 0x00000803, found 0x00000804"),
    "bad label magic": (LBL, lambda: idx_labels((5, 0, 4, 1, 9), magic=0x803),
                        r"wrong magic number.*expected 0x00000801, found 0x00000803"),
    "wrong dims": (IMG, lambda: idx_images(5, rows=27, seed=1),
                   r"wrong image dimensions: expected 28x28, found 27x28"),
    "truncated images": (IMG, lambda: idx_images(5, count=6, seed=1),
                         r"truncated: expected 4720 bytes.*6 images.*found 3936 bytes"),
    "truncated labels": (LBL, lambda: idx_labels((5, 0, 4, 1, 9), count=7),
                         r"truncated: expected 15 bytes.*found 13 bytes"),
    "lying count": (IMG, lambda: idx_images(5, count=4, seed=1),
                    r"extra bytes.*expected 3152 bytes.*found 3936 bytes"),
    "header cut short": (TEST_LBL, lambda: b"\x00\x00\x08\x01",
                         r"header cut short: expected 8 header bytes, found 4"),
    "byte flipped": (IMG, lambda: flipped(tiny_raw()[IMG]),
                     r"checksum mismatch.*expected sha256 [0-9a-f]{64}"),
}


def assert_names_file(excinfo: pytest.ExceptionInfo, path: Path) -> None:
    message = str(excinfo.value)
    assert str(path) in message
    assert "XGRAD_DATA_DIR" in message
    assert "Delete the file" in message


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_corrupt_file_is_rejected(cache, trust, tmp_path, case, gz):
    stem, make, pattern = HEADER_CASES[case]
    trust(tiny_raw())
    folder = write_set(tmp_path / "data", {**tiny_raw(), stem: make()}, gz=gz)
    with pytest.raises(DatasetError, match=pattern) as excinfo:
        load_mnist(data_dir=folder)
    assert_names_file(excinfo, folder / (f"{stem}.gz" if gz else stem))


@pytest.mark.parametrize("damage", [
    lambda gz: b"this is not gzip data",
    lambda gz: gz[: len(gz) // 2],
    lambda gz: gz[:-8] + b"\x00" * 8,  # wrong CRC and length trailer
], ids=["garbage", "cut in half", "bad trailer"])
def test_damaged_gzip_is_rejected(cache, trust, tmp_path, damage):
    trust(tiny_raw())
    folder = write_set(tmp_path / "data", tiny_raw())
    path = folder / f"{TEST_IMG}.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DatasetError, match="not a valid gzip file") as excinfo:
        load_mnist(data_dir=folder)
    assert_names_file(excinfo, path)


def test_image_label_count_mismatch(cache, trust, tmp_path):
    raw = {**tiny_raw(), LBL: idx_labels((5, 0, 4, 1))}
    trust(raw)
    folder = write_set(tmp_path / "data", raw)
    with pytest.raises(DatasetError, match="found 5 images and 4 labels") as excinfo:
        load_mnist(data_dir=folder)
    assert_names_file(excinfo, folder / f"{IMG}.gz")
    assert str(folder / f"{LBL}.gz") in str(excinfo.value)


def test_label_out_of_range(cache, trust, tmp_path):
    raw = tiny_raw(test=(7, 10, 1))
    trust(raw)
    folder = write_set(tmp_path / "data", raw)
    pattern = r"index 1: expected labels in 0\.\.9, found 10"
    with pytest.raises(DatasetError, match=pattern) as excinfo:
        load_mnist(data_dir=folder)
    assert_names_file(excinfo, folder / f"{TEST_LBL}.gz")


def test_tiny_set_loads_when_trusted(cache, trust, tmp_path):
    raw = tiny_raw()
    trust(raw, "fashion-mnist")
    folder = write_set(tmp_path / "data", raw, gz=False)
    (x, t), (x_test, t_test) = load_mnist(data_dir=folder, dataset="fashion_mnist",
                                          normalize=np.True_, one_hot_label=False)
    assert (x.shape, x_test.shape) == ((5, 784), (3, 784))
    assert (t.tolist(), t_test.tolist()) == ([5, 0, 4, 1, 9], [7, 2, 1])
    np.testing.assert_array_equal(x * 255, np.frombuffer(raw[IMG][16:], np.uint8)
                                  .reshape(5, 784).astype(np.float32))


# --- in-memory cache --------------------------------------------------------

def test_repeated_calls_reuse_parsed_files(cache, trust, tmp_path, monkeypatch):
    trust(tiny_raw())
    folder = write_set(tmp_path / "data", tiny_raw())
    first = load_mnist(data_dir=folder)

    def no_reading(*args, **kwargs):
        raise AssertionError("file read again although it did not change")

    monkeypatch.setattr(_idx, "read_raw", no_reading)
    again = load_mnist(data_dir=folder)
    np.testing.assert_array_equal(again[0][0], first[0][0])


def test_changed_file_is_read_again(cache, trust, tmp_path):
    trust(tiny_raw())
    folder = write_set(tmp_path / "data", tiny_raw())
    load_mnist(data_dir=folder)
    path = folder / f"{IMG}.gz"
    stamp = path.stat().st_mtime_ns
    path.write_bytes(gzip.compress(flipped(tiny_raw()[IMG])))
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_mnist(data_dir=folder)


# --- where the files are found ------------------------------------------------

def test_search_order(cache, trust, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="xgrad")
    trust(tiny_raw())
    places = {
        "data_dir": tmp_path / "arg", "XGRAD_DATA_DIR": tmp_path / "env",
        "user cache": cache, "system data sets": tmp_path / "usr-share-datasets/mnist",
        "copy shipped with xgrad": tmp_path / "package/mnist",
    }
    for folder in places.values():
        write_set(folder, tiny_raw())
    monkeypatch.setenv("XGRAD_DATA_DIR", str(places["XGRAD_DATA_DIR"]))
    for source, folder in places.items():
        data_dir = places["data_dir"] if source == "data_dir" else None
        load_mnist(data_dir=data_dir, download=False)
        assert loaded_from(caplog) == f"loading mnist from {folder} ({source})"
        if source == "XGRAD_DATA_DIR":
            monkeypatch.delenv("XGRAD_DATA_DIR")
        elif source != "data_dir":
            (folder / f"{TEST_LBL}.gz").unlink()  # an incomplete folder is passed over


@pytest.mark.parametrize("via", ["data_dir", "XGRAD_DATA_DIR"])
def test_root_with_subfolder(cache, trust, tmp_path, monkeypatch, caplog, via):
    caplog.set_level(logging.INFO, logger="xgrad")
    trust(tiny_raw(), "fashion-mnist")
    write_set(tmp_path / "root" / "fashion-mnist", tiny_raw())
    write_set(tmp_path / "root" / "mnist", {**tiny_raw(), IMG: b"wrong data set"})
    data_dir = tmp_path / "root" if via == "data_dir" else None
    monkeypatch.setenv("XGRAD_DATA_DIR", str(tmp_path / "root"))
    (x, _), _ = load_mnist(dataset="fashion-mnist", data_dir=data_dir)
    assert x.shape == (5, 784)
    assert str(tmp_path / "root" / "fashion-mnist") in loaded_from(caplog)
    assert f"({via})" in loaded_from(caplog)


def test_offline_error_lists_every_place(cache, tmp_path, monkeypatch, opener):
    monkeypatch.setenv("XGRAD_DATA_DIR", str(tmp_path / "env"))
    missing = (tmp_path / "no-mirror").as_uri() + "/"
    monkeypatch.setitem(_mnist.MIRRORS, "mnist",
                        (missing, "https://mirror.invalid/mnist"))
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_mnist()
    message = str(excinfo.value)
    for place in ("env", "env/mnist", "xdg/xgrad/mnist",
                  "usr-share-datasets/mnist", "package/mnist"):
        assert f"{tmp_path / place} (" in message
    assert f"{missing}{IMG}.gz: " in message
    assert f"https://mirror.invalid/mnist/{IMG}.gz: " in message
    assert "network disabled in tests" in message
    hints = ("XGRAD_DATA_DIR", "data_dir=", "apt-get install dataset-fashion-mnist")
    for hint in hints:
        assert hint in message
    assert isinstance(excinfo.value, FileNotFoundError)
    assert opener.urls == [f"{missing}{IMG}.gz", f"https://mirror.invalid/mnist/{IMG}.gz"]
    assert opener.timeouts == [_mnist.DOWNLOAD_TIMEOUT] * 2
    assert not any(cache.iterdir())  # no half-written file left behind


def test_download_false_skips_the_mirrors(cache, tmp_path, monkeypatch, opener):
    monkeypatch.setitem(_mnist.MIRRORS, "fashion-mnist", ("https://mirror.invalid/",))
    with pytest.raises(DatasetNotFoundError, match="download=False") as excinfo:
        load_mnist(dataset="fashion-mnist", download=False)
    assert opener.urls == []
    assert "mirror.invalid" not in str(excinfo.value)
    assert "package" not in str(excinfo.value)  # no shipped Fashion-MNIST to look in


def serve(folder: Path, raw: dict[str, bytes]) -> str:
    write_set(folder, raw)
    return folder.as_uri() + "/"


def test_download_from_mirror(cache, trust, tmp_path, monkeypatch, opener, caplog):
    caplog.set_level(logging.INFO, logger="xgrad")
    trust(tiny_raw())
    good = serve(tmp_path / "good", tiny_raw())
    bad = serve(tmp_path / "bad", {**tiny_raw(), LBL: flipped(tiny_raw()[LBL], 9)})
    monkeypatch.setitem(_mnist.MIRRORS, "mnist", (bad, good))
    real_replace, moves = os.replace, []

    def replace(src, dst):
        assert not Path(dst).exists()
        assert Path(src).parent == Path(dst).parent == cache
        moves.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(_mnist.os, "replace", replace)
    (_, t), _ = load_mnist()
    assert t.tolist() == [5, 0, 4, 1, 9]
    assert sorted(moves) == sorted(p.name for p in cache.iterdir())
    assert sorted(moves) == sorted(f"{s}.gz" for s in STEMS)  # nothing else left
    for stem in STEMS:
        assert (cache / f"{stem}.gz").read_bytes() == (tmp_path / "good" / f"{stem}.gz"
                                                       ).read_bytes()
    assert f"{bad}{LBL}.gz" in opener.urls
    assert loaded_from(caplog).endswith("(downloaded)")
    calls = len(opener.urls)
    load_mnist()
    assert len(opener.urls) == calls
    assert "(user cache)" in loaded_from(caplog)


@pytest.mark.parametrize("tamper", [
    lambda raw: gzip.compress(flipped(raw)),
    lambda raw: b"<html>not found</html>",
], ids=["byte flipped", "not gzip"])
def test_tampered_download_is_not_kept(cache, trust, tmp_path, monkeypatch, tamper):
    trust(tiny_raw())
    mirror = serve(tmp_path / "mirror", tiny_raw())
    (tmp_path / "mirror" / f"{TEST_IMG}.gz").write_bytes(tamper(tiny_raw()[TEST_IMG]))
    monkeypatch.setitem(_mnist.MIRRORS, "mnist", (mirror,))
    with pytest.raises(DatasetNotFoundError,
                       match=f"{TEST_IMG}.gz: .*(checksum mismatch|not a valid gzip)"):
        load_mnist()
    assert sorted(p.name for p in cache.iterdir()) == [f"{IMG}.gz", f"{LBL}.gz"]


def test_only_missing_files_are_downloaded(cache, trust, tmp_path, monkeypatch, opener):
    trust(tiny_raw())
    mirror = serve(tmp_path / "mirror", tiny_raw())
    write_set(cache, {IMG: tiny_raw()[IMG], TEST_LBL: tiny_raw()[TEST_LBL]})
    monkeypatch.setitem(_mnist.MIRRORS, "mnist", (mirror,))
    load_mnist()
    assert sorted(opener.urls) == [f"{mirror}{TEST_IMG}.gz", f"{mirror}{LBL}.gz"]


# --- bad arguments ----------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "error", "pattern"), [
    ({"normalize": 1}, TypeError, "`normalize` must be a bool; got int"),
    ({"flatten": "no"}, TypeError, "`flatten` must be a bool; got str"),
    ({"one_hot_label": None}, TypeError,
     "`one_hot_label` must be a bool; got NoneType"),
    ({"download": 0}, TypeError, "`download` must be a bool; got int"),
    ({"dataset": 3}, TypeError, "`dataset` must be a str; got int"),
    ({"dataset": "foo"}, ValueError,
     "`dataset` must be 'mnist' or 'fashion-mnist'; got 'foo'"),
    ({"dataset": "cifar10"}, ValueError, "got 'cifar10'"),
    ({"data_dir": 42}, TypeError, "`data_dir` must be None, a str or an os.PathLike"),
    ({"data_dir": ""}, ValueError, "`data_dir` must name a folder"),
])
def test_bad_arguments(kwargs, error, pattern, opener):
    with pytest.raises(error, match=pattern):
        load_mnist(**kwargs)
    assert opener.urls == []


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        load_mnist(True)  # type: ignore[misc]


# --- hostile or slow mirrors --------------------------------------------------

class Endless:
    """A response that never ends: zeros, or one byte per `delay` seconds."""

    def __init__(self, url: str, *, length: str | None = None, delay: float = 0.0) -> None:
        self.url, self.delay, self.sent = url, delay, 0
        self.headers = {} if length is None else {"Content-Length": length}

    def geturl(self) -> str:
        return self.url

    def read1(self, n: int) -> bytes:
        if self.delay:
            import time

            time.sleep(self.delay)
            n = 1
        self.sent += n
        return b"\0" * n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def serve_fake(monkeypatch: pytest.MonkeyPatch, make) -> list[Endless]:
    served: list[Endless] = []

    def urlopen(request, timeout=None):
        served.append(make(request.full_url))
        return served[-1]

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setitem(_mnist.MIRRORS, "mnist", ("https://mirror.example/",))
    return served


def test_download_stops_at_the_known_size(cache, monkeypatch):
    served = serve_fake(monkeypatch, Endless)
    with pytest.raises(DatasetNotFoundError, match="sent more than the 47511440 bytes this file can have"):
        load_mnist()
    assert served[0].sent <= 47_511_440 + 2**16
    assert not any(cache.iterdir())


def test_download_refuses_an_announced_size_too_large(cache, monkeypatch):
    served = serve_fake(monkeypatch, lambda url: Endless(url, length=str(10 * 2**30)))
    with pytest.raises(DatasetNotFoundError, match="announces 10737418240 bytes"):
        load_mnist()
    assert served[0].sent == 0


def test_download_has_an_overall_deadline(cache, monkeypatch):
    monkeypatch.setattr(_mnist, "DOWNLOAD_DEADLINE", 0.3)
    served = serve_fake(monkeypatch, lambda url: Endless(url, delay=0.02))
    with pytest.raises(DatasetNotFoundError, match=r"longer than DOWNLOAD_DEADLINE \(0.3 s\)"):
        load_mnist()
    assert 5 <= served[0].sent <= 40
    assert not any(cache.iterdir())


def test_only_https_mirrors_are_used(cache, monkeypatch, opener):
    monkeypatch.setitem(_mnist.MIRRORS, "mnist", ("http://mirror.example/",))
    with pytest.raises(DatasetNotFoundError, match="only https mirrors are used, not http"):
        load_mnist()
    assert opener.urls == []
    served = serve_fake(monkeypatch, lambda url: Endless("http://elsewhere.example/x.gz"))
    with pytest.raises(DatasetNotFoundError, match=r"not http \(redirected to http://elsewhere"):
        load_mnist()
    assert served[0].sent == 0


def test_shipped_mirrors_are_https():
    for bases in _mnist.MIRRORS.values():
        assert bases and all(b.startswith("https://") for b in bases)


# --- data set files under the wrong name --------------------------------------------

def _tiny_set(seed, train_labels, test_labels):
    import struct

    rng = np.random.default_rng(seed)

    def images(n):
        return struct.pack(">4I", 0x803, n, 28, 28) + rng.integers(0, 256, (n, 28, 28), np.uint8).tobytes()

    def labels(ts):
        return struct.pack(">2I", 0x801, len(ts)) + bytes(ts)

    return dict(zip(STEMS, (images(len(train_labels)), labels(train_labels), images(len(test_labels)),
                            labels(test_labels)), strict=True))


@pytest.fixture
def idx_sets(monkeypatch, tmp_path):
    """Two tiny data sets, trusted as MNIST and Fashion-MNIST, and nowhere else to look."""
    import hashlib

    import xgrad._datasets.mnist as mnist

    monkeypatch.delenv("XGRAD_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(mnist, "_SYSTEM_DIR", tmp_path / "none")
    monkeypatch.setattr(mnist, "_PACKAGE_DIR", tmp_path / "none")
    monkeypatch.setattr(mnist, "MIRRORS", {"mnist": (), "fashion-mnist": ()})
    sets = {"mnist": _tiny_set(1, (5, 0, 4, 1, 9), (7, 2, 1)), "fashion-mnist": _tiny_set(2, (9, 0, 0), (9, 2))}
    for name, raw in sets.items():
        monkeypatch.setitem(mnist.SHA256, name, {s: hashlib.sha256(b).hexdigest() for s, b in raw.items()})

    def folder(files):
        d = tmp_path / f"data{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        for stem, data in files.items():
            (d / stem).write_bytes(data)
        return d

    return sets, folder


def test_a_file_of_the_other_split_is_named_not_called_tampered(idx_sets):
    # the test labels replaced by the training labels: "checksum mismatch (tampered
    # or corrupted data)... Delete the file", advice that would delete a good file
    sets, folder = idx_sets
    d = folder({**sets["mnist"], "t10k-labels-idx1-ubyte": sets["mnist"]["train-labels-idx1-ubyte"]})
    with pytest.raises(xgrad.DatasetError) as info:
        xgrad.load_mnist(data_dir=d, download=False)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte: it holds mnist's train-labels-idx1-ubyte, not mnist's t10k-labels" in message
    assert "tampered" not in message and "Delete" not in message


def test_a_file_of_the_other_data_set_is_named(idx_sets):
    sets, folder = idx_sets
    d = folder(sets["mnist"])
    with pytest.raises(xgrad.DatasetError, match=r"it holds mnist's train-images-idx3-ubyte, not fashion-mnist's "
                                                 r"train-images-idx3-ubyte: a file of another data set or split"):
        xgrad.load_mnist(data_dir=d, dataset="fashion-mnist", download=False)
    (_, t), _ = xgrad.load_mnist(data_dir=d, download=False)  # the files themselves are good
    assert t.tolist() == [5, 0, 4, 1, 9]


def test_a_data_root_with_loose_mnist_files_still_gives_fashion_mnist_from_its_subfolder(idx_sets, tmp_path):
    # the loose files were taken first, and failed as the wrong data set, although
    # the root's fashion-mnist/ subfolder held the data set asked for
    sets, folder = idx_sets
    root = folder(sets["mnist"])
    (root / "fashion-mnist").mkdir()
    for stem, data in sets["fashion-mnist"].items():
        (root / "fashion-mnist" / stem).write_bytes(data)
    (_, t), _ = xgrad.load_mnist(data_dir=root, dataset="fashion-mnist", download=False)
    assert t.tolist() == [9, 0, 0]
    (_, t), _ = xgrad.load_mnist(data_dir=root, download=False)  # and MNIST from the loose files
    assert t.tolist() == [5, 0, 4, 1, 9]


# --- a data_dir the caller names is the folder used, or an error ------------------

def test_a_missing_data_dir_is_an_error_not_another_copy(shipped, tmp_path, opener):
    with pytest.raises(DatasetNotFoundError, match=r"`data_dir` '.*/no/such/folder' does not exist; give the folder"):
        shipped(data_dir=tmp_path / "no" / "such" / "folder")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetNotFoundError, match="is a regular file, not a folder"):
        shipped(data_dir=tmp_path / "file")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_mnist(data_dir=tmp_path / "nowhere")  # downloads nothing either
    assert opener.urls == []


def test_a_data_dir_of_other_files_is_an_error(shipped):
    with pytest.raises(DatasetNotFoundError) as excinfo:
        shipped(data_dir="/etc")
    message = str(excinfo.value)
    assert "`data_dir` '/etc' does not hold the mnist data set" in message
    assert all(f"{stem} (raw or .gz) is missing" in message for stem in STEMS)
    assert "leave `data_dir` out" in message


def _special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(path)
    elif kind == "dangling":
        path.symlink_to(path.parent / "gone")
    else:
        path.symlink_to("/dev/zero")


@pytest.mark.parametrize(("kind", "what"), [
    ("missing", "is missing"), ("fifo", "is a FIFO"), ("folder", "is a folder"),
    ("loop", "is a symlink loop"), ("dangling", "is a dangling symlink"),
    ("zero", "is a character device")])
@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("sub", [False, True])
def test_a_data_dir_lacking_a_usable_file_names_it(shipped, trust, tmp_path, kind, what, gz, sub):
    trust(tiny_raw())
    root = tmp_path / "data"
    folder = write_set(root / "mnist" if sub else root, tiny_raw(), gz=gz)
    name = f"{TEST_LBL}.gz" if gz else TEST_LBL
    (folder / name).unlink()
    if kind != "missing":
        _special(folder / name, kind)
    with pytest.raises(DatasetNotFoundError) as excinfo:
        shipped(data_dir=root)
    message = str(excinfo.value)
    expected = f"{TEST_LBL} (raw or .gz) is missing" if kind == "missing" else f"{name} {what}, not a regular file"
    assert f"`data_dir` {str(root)!r} does not hold the mnist data set: {expected}" in message
    assert f"into {str(folder)!r}" in message
    problems = message.split("data set: ")[1].split(". ")[0]
    assert all(stem not in problems for stem in (IMG, LBL, TEST_IMG))


def test_a_complete_data_dir_is_used_over_every_other_place(shipped, trust, tmp_path, caplog, monkeypatch):
    trust(tiny_raw())
    folder = write_set(tmp_path / "data", tiny_raw())
    monkeypatch.setenv("XGRAD_DATA_DIR", str(SHIPPED))
    (x, _), _ = shipped(data_dir=folder)
    assert x.shape == (5, 784)
    assert loaded_from(caplog) == f"loading mnist from {folder} (data_dir)"


@pytest.mark.parametrize("kind", ["fifo", "folder", "zero"])
@pytest.mark.parametrize("gz", [True, False])
def test_reading_refuses_what_is_not_a_regular_file_without_blocking(tmp_path, kind, gz):
    path = tmp_path / "file"
    _special(path, kind)
    what = {"fifo": "a FIFO", "folder": "a folder", "zero": "a device"}[kind]
    with pytest.raises(DatasetError, match=f"file: is {what}, not a regular file"):
        _idx.read_raw(path, gz=gz)  # a FIFO with no writer would block a plain open


def test_reading_refuses_a_file_larger_than_any_of_the_data_set_before_reading(tmp_path):
    path = tmp_path / "big"
    with open(path, "wb") as f:
        f.truncate(2**40)  # sparse: reading it whole would take hours
    with pytest.raises(DatasetError, match="too large: expected at most 1000 bytes, found 1099511627776 bytes"):
        _idx.read_raw(path, gz=False, limit=1000)
    with pytest.raises(DatasetError, match="too large"):
        _idx.read_raw(path, gz=True)


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert _mnist._cache_dir("mnist") == tmp_path / "home" / ".cache" / "xgrad" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "abs"))
    assert _mnist._cache_dir("mnist") == tmp_path / "abs" / "xgrad" / "mnist"
