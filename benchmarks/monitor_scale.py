"""BettiMonitor at real-model scale: a torchvision ResNet-18 at 224 px on real CIFAR-10 images.

For each probe size (500 and 1,000 images, class-balanced; the layers: every ReLU module at its last call, the
stem's and each block's output, and the logits, plus the input: the default's choice before each call of a module
became a layer of its own, named here so that the figures stay comparable), each in a fresh process so that memory
figures do not mix:

- ``forward``: the probe's forward pass alone (eval mode, no gradients, the monitor's batch size);
- ``before``: the route as it stood before the device route (every layer's activations for the whole probe
  held on the host, ``np.unique`` on wide rows, float64 distances, Betti numbers in threads), synchronously:
  its time is all blocking;
- ``fit``: a Trainer fit of the same ResNet-18 (2 epochs of 4 steps of 16 images at 224 px) without, then with
  the monitor (``every_n_epochs=1``): the time the monitor adds to the fit per measurement, the time the
  training loop was blocked (``blocked_seconds``) and the monitor's total compute (``seconds``) per measurement;
- peak host memory added (this process's VmHWM over its RSS before the measurement; the worker processes'
  own peak separately) and, on a GPU, peak device memory;
- whether the Betti numbers equal the old route's, on the same weights and probe.

Usage:
    python benchmarks/monitor_scale.py --data-root ../shared/data                 # probes 500 and 1000, CPU
    python benchmarks/monitor_scale.py --data-root ../shared/data --accelerator gpu --probes 1000
    python benchmarks/monitor_scale.py --data-root ../shared/data --skip-before     # only the new route
    python benchmarks/monitor_scale.py --data-root ../shared/data --memory-only     # one measurement's memory
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from common import Parser, fresh_compute

IMAGE_SIZE = 224
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


# ------------------------------------------------------------------------------------------- data and model
def cifar_images(
    root: Path, per_class: int, split: str = "train", offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` real CIFAR-10 images of each class, upsampled to 224 px and normalised."""
    from PIL import Image

    xs, ys = [], []
    for label, name in enumerate(CLASSES):
        files = sorted((root / "cifar10" / split / name).glob("*.png"))[offset : offset + per_class]
        if len(files) < per_class:
            raise SystemExit(f"need {per_class} images of {name} under {root / 'cifar10' / split}, found {len(files)}")
        for file in files:
            xs.append(torch.from_numpy(np.array(Image.open(file).convert("RGB"))).permute(2, 0, 1))
            ys.append(label)
    x = torch.stack(xs).float() / 255.0
    x = (x - 0.5) / 0.25
    x = torch.nn.functional.interpolate(x, size=IMAGE_SIZE, mode="bilinear", align_corners=False)
    return x, torch.tensor(ys)


#: every ReLU module of the ResNet-18 at its last call (the stem's and each block's output), and the logits
WATCHED = ["net.relu", "net.layer*.*.relu", "logits"]


def resnet_module():
    import lightning.pytorch as pl
    import torchvision

    class ResNet18(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torchvision.models.resnet18(num_classes=10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)

    return ResNet18()


# ------------------------------------------------------------------------------------------- memory
def _status(pid: int | str, field: str) -> float:
    """A /proc/<pid>/status field in MB (VmRSS, VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def children_rss_mb() -> float:
    """Resident memory of this process's child processes (the monitor's workers), in MB."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            total += _status(stat.parent.name, "VmRSS")
    return total


class ChildrenPeak:
    """Samples the child processes' total RSS every 0.2 s while active: the workers' peak."""

    def __init__(self) -> None:
        import threading

        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, children_rss_mb())

    def __enter__(self) -> ChildrenPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def reset_peak() -> float:
    """Reset this process's peak RSS (VmHWM) to its current RSS; return that RSS in MB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("self", "VmRSS")


# ------------------------------------------------------------------------------------------- the old route
def _old_betti(cloud: np.ndarray, k: int, scale: float, max_dim: int) -> tuple[int, ...]:
    """betti_numbers as it stood: float64 copy, np.unique on whole rows, brute-force float64 k-NN, hop edges."""
    import scipy.sparse as sp

    from lightning_topo.topology.graph import hop_edges

    cloud = cloud.astype(np.float64)
    unique = np.unique(cloud, axis=0)
    if len(unique) == 1:
        return (1,) + (0,) * max_dim
    n = len(unique)
    kk = min(k, n)
    sq = np.einsum("ij,ij->i", unique, unique)
    dist = sq[:, None] - 2.0 * unique @ unique.T + sq[None, :]
    dist[np.arange(n), np.arange(n)] = -np.inf
    idx = np.argsort(dist, axis=1, kind="stable")[:, :kk]
    rows = np.repeat(np.arange(n), kk)
    keep = rows != idx.ravel()
    adj = sp.csr_matrix((np.ones(keep.sum(), dtype=bool), (rows[keep], idx.ravel()[keep])), shape=(n, n))
    adj = (adj + adj.T).astype(bool).tocsr()
    return _old_flag_betti(n, hop_edges(adj, hops=int(math.floor(scale))), max_dim)


def _old_flag_betti(n: int, edges: np.ndarray, max_dim: int) -> tuple[int, ...]:
    """The Betti engine as it stood before issue 20, so that the check does not share the new engine: one gudhi
    simplex tree of the whole graph, ``collapse_edges`` repeated to a fixed point, expansion, persistence."""
    import gudhi

    tree = gudhi.SimplexTree()
    tree.insert_batch(np.arange(n, dtype=np.int64)[None, :], np.zeros(n))
    if edges.shape[1]:
        tree.insert_batch(np.ascontiguousarray(edges, dtype=np.int64), np.zeros(edges.shape[1]))
    size = tree.num_simplices()
    for _ in range(16):
        tree.collapse_edges(nb_iterations=1)
        if tree.num_simplices() == size:
            break
        size = tree.num_simplices()
    tree.expansion(max_dim + 1)
    tree.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    betti = list(tree.betti_numbers())[: max_dim + 1]
    return tuple(int(b) for b in betti + [0] * (max_dim + 1 - len(betti)))


def old_route(model, x, y, layers, k, scale, max_dim, batch_size) -> dict:
    from lightning_topo.monitoring import capture_activations

    outputs = capture_activations(model, x, layers, batch_size)
    classes = {str(int(c)): torch.nonzero(y == c).flatten() for c in torch.unique(y)}
    jobs = [(layer, cls) for layer in layers for cls in classes]

    def run(job):
        layer, cls = job
        return _old_betti(outputs[layer][classes[cls]].numpy(), k, scale, max_dim)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(run, jobs))
    betti: dict = {}
    for (layer, cls), value in zip(jobs, results):
        betti.setdefault(layer, {})[cls] = list(value)
    return betti


# ------------------------------------------------------------------------------------------- one probe size
def measure(args: argparse.Namespace) -> dict:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_topo.callbacks import BettiMonitor
    from lightning_topo.monitoring import INPUT, select_layers

    torch.set_num_threads(os.cpu_count() or 1)
    cuda = args.accelerator == "gpu"
    device = torch.device("cuda" if cuda else "cpu")
    probe = cifar_images(args.data_root, args.probe // 10)  # grouped by class, as the monitor groups its own
    if cuda:  # page-locked, as the monitor prepares a probe it draws itself (a probe passed in is used as it is)
        probe = (probe[0].pin_memory(), probe[1])
    train = cifar_images(args.data_root, 4, offset=500)  # 40 other images: the fit's training set
    train = (train[0][:32], train[1][:32])
    out: dict = {"probe": args.probe, "device": torch.cuda.get_device_name() if cuda else "cpu"}
    k, batch = 14, 256

    model = resnet_module().to(device)
    layers = [INPUT, *select_layers(model, WATCHED, probe[0][:2])]
    out["layers"] = len(layers)

    # the probe's forward pass alone
    with torch.no_grad():
        model.eval()
        model(probe[0][:8].to(device))  # warm-up
        start = time.perf_counter()
        for i in range(0, len(probe[0]), batch):
            model(probe[0][i : i + batch].to(device))
        if cuda:
            torch.cuda.synchronize()
        out["forward_s"] = time.perf_counter() - start
        model.train()

    def fit(monitor: BettiMonitor | None) -> float:
        pl.seed_everything(0, verbose=False)
        trainer = pl.Trainer(
            accelerator=args.accelerator,
            devices=1,
            max_epochs=2,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[monitor] if monitor else [],
        )
        loader = DataLoader(TensorDataset(*train), batch_size=16, shuffle=True)
        start = time.perf_counter()
        trainer.fit(model, loader)
        return time.perf_counter() - start

    if args.memory_only:  # one measurement outside a fit: its time and the host memory it adds
        monitor = BettiMonitor(probe=probe, k=k, probe_size=args.probe, layers=WATCHED)
        monitor.set_probe(*probe, model=model)
        assert monitor.watched_layers == layers, (monitor.watched_layers, layers)
        fresh_compute(monitor, model)  # warm-up: lazy imports, allocator pools
        rss_before = reset_peak()
        start = time.perf_counter()
        fresh_compute(monitor, model)
        out["measurement_alone_s"] = time.perf_counter() - start
        out["measurement_peak_mb"] = _status("self", "VmHWM") - rss_before
        return out

    rss_before = reset_peak()
    out["fit_without_s"] = fit(None)
    out["host_peak_without_mb"] = _status("self", "VmHWM") - rss_before
    monitor = BettiMonitor(  # one worker process, as on a GPU (on a CPU-trained model the default is synchronous)
        probe=probe, k=k, probe_size=args.probe, every_n_epochs=1, log_figure=False, num_workers=1, layers=WATCHED
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss_before = reset_peak()
    with ChildrenPeak() as workers:
        out["fit_with_s"] = fit(monitor)
    out["workers_peak_mb"] = workers.peak
    out["host_peak_with_mb"] = _status("self", "VmHWM") - rss_before
    if cuda:
        out["device_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    out["measurements"] = [
        {"epoch": e["epoch"], "blocked_s": e["blocked_seconds"], "compute_s": e["seconds"]} for e in monitor.history
    ]
    new_betti = monitor.history[-1]["betti"]

    # the monitor's own peak, apart from training's: one measurement (capture + distances + Betti numbers) alone
    rss_before = reset_peak()
    start = time.perf_counter()
    alone = fresh_compute(monitor, model)
    out["measurement_alone_s"] = time.perf_counter() - start
    out["measurement_peak_mb"] = _status("self", "VmHWM") - rss_before
    assert alone["betti"] == new_betti  # the same weights as the fit's last measurement

    if not args.skip_before:
        model.eval()
        model.cpu()
        rss_before = reset_peak()
        start = time.perf_counter()
        old = old_route(model, probe[0], probe[1], layers, k, 2.5, 1, batch)
        out["before_s"] = time.perf_counter() - start
        out["before_host_peak_added_mb"] = _status("self", "VmHWM") - rss_before
        out["identical_to_before"] = old == new_betti
        if old != new_betti:
            out["differences"] = [
                (layer, cls, old[layer].get(cls), new_betti.get(layer, {}).get(cls))
                for layer in old
                for cls in old[layer]
                if old[layer].get(cls) != new_betti.get(layer, {}).get(cls)
            ]
    return out


def report(result: dict) -> None:
    if "fit_with_s" not in result:  # --memory-only
        print(
            f"\n== ResNet-18 at {IMAGE_SIZE} px, probe {result['probe']} images, {result['layers']} layers, "
            f"{result['device']}\nprobe forward pass alone: {result['forward_s']:.1f} s; one measurement alone, "
            f"synchronous: {result['measurement_alone_s']:.1f} s, peak host memory added "
            f"{result['measurement_peak_mb']:.0f} MB (target <= 1024 MB at probe 500)"
        )
        return
    n = len(result["measurements"])
    added = (result["fit_with_s"] - result["fit_without_s"]) / max(n, 1)
    blocked = [m["blocked_s"] for m in result["measurements"]]
    compute = [m["compute_s"] for m in result["measurements"]]
    fwd = result["forward_s"]
    print(
        f"\n== ResNet-18 at {IMAGE_SIZE} px, probe {result['probe']} images, {result['layers']} layers, {result['device']}"
    )
    print(f"probe forward pass alone:                 {fwd:7.1f} s")
    if "before_s" in result:
        print(
            f"before (old route, all blocking):         {result['before_s']:7.1f} s = {result['before_s'] / fwd:.1f}x the forward pass;"
            f" peak host memory added {result['before_host_peak_added_mb']:.0f} MB"
        )
    print(f"fit, 2 epochs of 4 steps, without monitor: {result['fit_without_s']:7.1f} s")
    print(f"fit, same, monitor every epoch ({n} meas.): {result['fit_with_s']:7.1f} s")
    print(
        f"added to the fit per measurement:         {added:7.1f} s = {added / fwd:.2f}x the forward pass (target <= 1.5x on CPU)"
    )
    print(
        f"training loop blocked per measurement:    {', '.join(f'{b:.1f}' for b in blocked)} s = "
        f"{', '.join(f'{b / fwd:.2f}' for b in blocked)}x the forward pass"
    )
    print(f"monitor's total compute per measurement:  {', '.join(f'{c:.1f}' for c in compute)} s")
    print(
        f"the fit's peak host memory over its start: {result['host_peak_without_mb']:.0f} MB without, "
        f"{result['host_peak_with_mb']:.0f} MB with the monitor (training's own peak dominates); "
        f"worker processes' peak RSS: {result['workers_peak_mb']:.0f} MB"
    )
    print(
        f"one measurement alone, synchronous:      {result['measurement_alone_s']:7.1f} s, peak host memory added "
        f"{result['measurement_peak_mb']:.0f} MB (target <= 1024 MB)"
    )
    if "device_peak_mb" in result:
        print(f"peak device memory during the fit:        {result['device_peak_mb']:.0f} MB")
    if "identical_to_before" in result:
        print(
            f"Betti numbers identical to the old route:  {result['identical_to_before']}"
            + ("" if result["identical_to_before"] else f"  {result['differences']}")
        )


def main() -> None:
    parser = Parser(__doc__, silent_when=["probe"])
    parser.with_data_root(type=Path)
    parser.add_argument("--probes", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--skip-before", action="store_true", help="do not measure the old route")
    parser.add_argument("--memory-only", action="store_true", help="one measurement outside a fit: time and memory")
    parser.add_argument("--before-max-probe", type=int, default=500, help="old route only up to this probe size")
    parser.add_argument("--probe", type=int, help=argparse.SUPPRESS)  # one measurement, in a child process
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe is not None:
        args.json.write_text(json.dumps(measure(args)))
        return
    for probe in args.probes:
        target = Path(f"/tmp/monitor_scale_{probe}.json")
        command = [
            sys.executable,
            __file__,
            "--data-root",
            str(args.data_root),
            "--accelerator",
            args.accelerator,
            "--probe",
            str(probe),
            "--json",
            str(target),
        ]
        if args.skip_before or probe > args.before_max_probe:
            command.append("--skip-before")
        if args.memory_only:
            command.append("--memory-only")
        subprocess.run(command, check=True)
        report(json.loads(target.read_text()))


if __name__ == "__main__":
    main()
