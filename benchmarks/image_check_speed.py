"""How long the set-up check for unreadable image files takes on a Kaggle-sized cats-vs-dogs folder.

Builds, in a temporary directory, Kaggle's flat layout ``cats_vs_dogs/train/{cat,dog}.N.jpg`` with N real JPEGs
(copied round-robin from the shared cats-vs-dogs subset) plus a few bad files of the kinds found in Kaggle's set
(truncated JPEGs, a text file and an empty file named .jpg) and a few odd but readable ones (a PNG named .jpg, a
JPEG with bytes after its end marker, which take the check's slow path). Then times, in the same run and on the
same files (warm page cache: they were just written):

* ``check_image_file`` on every file (what ``setup()`` runs);
* PIL ``Image.open`` + ``verify()`` on every file (the usual suggestion);
* a full decode of every file (``Image.open(...).convert("RGB")``, what loading a batch does): the baseline;
* ``CatsVsDogsDataModule.setup("fit")`` + ``setup("test")`` end to end (listing, check, split), and the same
  with the check replaced by a no-op (what set-up cost before the check existed).

Each reports wall time, cost per file and how many files it flags. ``--resize 500`` re-encodes the copies at
500 pixels wide (Kaggle's photos are about 500x375, the shared subset's about 86x64), so that the decode baseline
costs what it would on the real set.

Usage:
    python benchmarks/image_check_speed.py                   # 25,000 copies of the shared subset's files
    python benchmarks/image_check_speed.py --n 2000 --resize 500
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from common import DATA_ROOT, Parser
from PIL import Image

from lightning_topo.data import images
from lightning_topo.data.image_files import check_image_file
from lightning_topo.data.images import CatsVsDogsDataModule

DEFAULT_SOURCE = DATA_ROOT / "cats_vs_dogs"


def build_folder(folder: Path, source: Path, n: int, resize: int | None) -> tuple[list[Path], set[Path]]:
    """N good JPEGs named like Kaggle's, then the bad and odd files; returns every path and the bad ones."""
    sources = sorted(source.glob("*/*/*.jpg"))
    if not sources:
        raise FileNotFoundError(f"no JPEGs under {source}/<split>/<class>/; pass --source")
    folder.mkdir(parents=True)
    cache: dict[Path, bytes] = {}
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        if src not in cache:
            if resize:
                with Image.open(src) as image:
                    height = round(image.height * resize / image.width)
                    buffer = io.BytesIO()
                    image.convert("RGB").resize((resize, height), Image.BILINEAR).save(buffer, "JPEG", quality=90)
                cache[src] = buffer.getvalue()
            else:
                cache[src] = src.read_bytes()
        label = "cat" if "/cat/" in src.as_posix() else "dog"
        path = folder / f"{label}.{i}.jpg"
        path.write_bytes(cache[src])
        paths.append(path)
    some_jpeg = cache[sources[0]]
    bad = {
        folder / f"cat.{n}.jpg": some_jpeg[: len(some_jpeg) // 2],  # truncated mid-scan
        folder / f"dog.{n + 1}.jpg": some_jpeg[:-2],  # only the end marker lost
        folder / f"cat.{n + 2}.jpg": b"<html>404 Not Found</html>\n",  # a saved error page
        folder / f"dog.{n + 3}.jpg": b"",  # empty
    }
    png = io.BytesIO()
    Image.open(io.BytesIO(some_jpeg)).save(png, "PNG")
    odd = {
        folder / f"cat.{n + 4}.jpg": png.getvalue(),  # a PNG named .jpg: readable
        folder / f"dog.{n + 5}.jpg": some_jpeg + b"\x00" * 64,  # bytes after the end marker: readable
    }
    for path, data in {**bad, **odd}.items():
        path.write_bytes(data)
        paths.append(path)
    return paths, set(bad)


def verify(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def decode(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            image.convert("RGB")
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def timed(check: Callable[[Path], str | None], paths: list[Path], repeat: int) -> tuple[float, set[Path]]:
    """Best wall time of ``repeat`` passes over ``paths`` and the files flagged."""
    best, flagged = float("inf"), set()
    for _ in range(repeat):
        start = time.perf_counter()
        flagged = {p for p in paths if check(p) is not None}
        best = min(best, time.perf_counter() - start)
    return best, flagged


def timed_setup(root: str, repeat: int, check: bool) -> tuple[float, set[Path]]:
    """Best wall time of ``setup("fit")`` + ``setup("test")`` (listing, check, split) and the files skipped."""
    no_check = mock.patch.object(images, "check_image_file", lambda path: None)
    best, found = float("inf"), set()
    with contextlib.nullcontext() if check else no_check, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            dm = CatsVsDogsDataModule(root=root, val_fraction=0.1, test_fraction=0.2)
            start = time.perf_counter()
            dm.setup("fit")
            dm.setup("test")
            best = min(best, time.perf_counter() - start)
            found = set(dm.bad_files)
    return best, found


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--n", type=int, default=25_000, help="good JPEGs to copy (default: Kaggle's 25,000)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with <split>/<class>/*.jpg")
    parser.add_argument("--resize", type=int, default=None, help="re-encode the copies this many pixels wide")
    parser.add_argument("--repeat", type=int, default=2, help="passes per method; the best is reported")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cats_vs_dogs" / "train"
        paths, bad = build_folder(folder, args.source, args.n, args.resize)
        size_mib = sum(p.stat().st_size for p in paths) / 2**20
        print(
            f"{len(paths)} files ({args.n} copies of real JPEGs from {args.source}"
            f"{f', re-encoded {args.resize} px wide' if args.resize else ''}; {len(bad)} bad, 2 odd but readable), "
            f"{size_mib:.1f} MiB, best of {args.repeat} passes, warm page cache"
        )
        print(f"{'method':<42} {'wall s':>8} {'us/file':>9} {'flagged':>8}  flags exactly the bad files")
        rows = [
            ("check_image_file (set-up check)", check_image_file),
            ("PIL Image.open + verify()", verify),
            ("full decode (baseline)", decode),
        ]
        results = {}
        for name, check in rows:
            seconds, flagged = timed(check, paths, args.repeat)
            results[name] = seconds
            exact = "yes" if flagged == bad else f"no (misses {len(bad - flagged)}, extra {len(flagged - bad)})"
            print(f"{name:<42} {seconds:>8.2f} {1e6 * seconds / len(paths):>9.1f} {len(flagged):>8}  {exact}")
        for name, check in (
            ("CatsVsDogsDataModule.setup fit+test", True),
            ("  the same, check replaced by a no-op", False),
        ):
            best, found = timed_setup(tmp, args.repeat, check)
            exact = "yes" if found == bad else f"no (misses {len(bad - found)}, extra {len(found - bad)})"
            exact = exact if check else "- (nothing checked)"
            print(f"{name:<42} {best:>8.2f} {1e6 * best / len(paths):>9.1f} {len(found):>8}  {exact}")
        check_s, decode_s = results[rows[0][0]], results[rows[2][0]]
        print(f"check / full decode: {check_s / decode_s:.3f} ({decode_s / check_s:.0f}x faster)")


if __name__ == "__main__":
    main()
