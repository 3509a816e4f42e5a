"""The CUDA routes against the CPU's, on one GPU: neighbour lists with their nearest distances, the intrinsic
dimension, and whole monitor measurements (Betti numbers and IDs) of the same model on both devices; then what
the intrinsic dimension adds to a ResNet-18 measurement at 224 px, probe 500, on the GPU (interleaved medians).

Usage (on a machine with a GPU):
    python benchmarks/gpu_checks.py | tee benchmarks/results/gpu_checks_h200.txt
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import torch
from common import Parser, fresh_compute

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.topology import intrinsic_dimension, neighbour_lists, numpy_neighbour_lists


def lists_agree() -> bool:
    rng = np.random.default_rng(0)
    ok = True
    for n, d in ((500, 2), (800, 15), (600, 300), (100, 800_000 // 100)):
        x = rng.normal(size=(n, d))
        x[1] = x[0]  # a duplicate
        cpu = numpy_neighbour_lists(x, k=10)
        gpu = neighbour_lists(torch.tensor(x, device="cuda"), k=10)
        same = np.array_equal(cpu.indices, gpu.indices) and np.allclose(cpu.nearest, gpu.nearest, rtol=1e-9)
        id_cpu, id_gpu = intrinsic_dimension(x), intrinsic_dimension(torch.tensor(x, device="cuda"))
        print(f"cloud {n} x {d}: lists identical {same}; ID numpy {id_cpu:.6f} cuda {id_gpu:.6f}", flush=True)
        ok &= same and abs(id_cpu - id_gpu) < 1e-6 * id_cpu
    return ok


def monitor_agrees() -> bool:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3),
        torch.nn.GELU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 24 * 24, 3),
    )
    x, y = torch.randn(300, 1, 28, 28), torch.arange(300) % 3
    entries = {}
    for device in ("cpu", "cuda"):
        monitor = BettiMonitor(k=8, num_workers=0, intrinsic_dimension=True, log_figure=False)
        model = net.to(device)
        monitor.set_probe(x, y, model=model)
        entries[device] = monitor.compute(model)
    same_betti = entries["cpu"]["betti"] == entries["cuda"]["betti"]
    worst = max(
        abs(entries["cpu"]["id"][layer][c] - entries["cuda"]["id"][layer][c]) / entries["cpu"]["id"][layer][c]
        for layer in entries["cpu"]["id"]
        for c in entries["cpu"]["id"][layer]
    )
    print(f"monitor on cpu vs cuda: Betti numbers identical {same_betti}; IDs differ by at most {worst:.2e} (relative)")
    return same_betti and worst < 1e-5


def resnet_id_cost(repeats: int = 5) -> None:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).cuda().eval()
    x, y = torch.randn(500, 3, 224, 224).pin_memory(), torch.arange(10).repeat_interleave(50)
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for repeat in range(repeats + 1):
        for with_id in (False, True) if repeat % 2 == 0 else (True, False):
            monitor = BettiMonitor(k=14, num_workers=0, intrinsic_dimension=with_id, log_figure=False)
            monitor.set_probe(x, y, model=model)
            torch.cuda.synchronize()
            entry = fresh_compute(monitor, model)
            if repeat:  # the first round warms up
                runs[with_id].append((entry["blocked_seconds"], entry["seconds"]))
    for i, label in enumerate(("measurement wall time", "monitor compute")):
        before = statistics.median(r[i] for r in runs[False])
        after = statistics.median(r[i] for r in runs[True])
        print(
            f"ResNet-18 224 px probe 500, {label}: without ID {before:.3f} s, with ID {after:.3f} s, ratio {after / before:.3f}"
        )


def main() -> int:
    Parser(__doc__).parse_args()
    print(f"GPU: {torch.cuda.get_device_name(0)}", flush=True)
    start = time.perf_counter()
    ok = lists_agree() & monitor_agrees()
    resnet_id_cost()
    print(f"all CUDA routes agree with the CPU's: {ok}; {time.perf_counter() - start:.0f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
