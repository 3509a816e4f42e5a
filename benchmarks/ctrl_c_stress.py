"""Ctrl-C during a monitored fit, many times under CPU load: does the training process always return, and fast?

Each fit is a fresh process training a small model with ``BettiMonitor(num_workers=2)`` whose Betti jobs are
slowed down (a sleep of 0.5 s, 5 s or 60 s in the worker, in turn), so that an interrupt finds jobs running,
queued, finished or blocking the training loop.  The fit is interrupted in one of three ways, in turn:

* ``self``: the process sends itself SIGINT at the start of epoch 1 (what ``tests/callbacks/test_betti_monitor_route.py`` does);
* ``external``: this script sends SIGINT at a random moment 0 to 1.5 s after epoch 1 started (a Ctrl-C typed
  while training, the monitor capturing, or the loop waiting for the workers);
* ``double``: as ``external``, then a second SIGINT 0.05 to 0.5 s later (an impatient user).

The child restores Python's default SIGINT handler first: a process started in the background of a
non-interactive shell inherits SIGINT as *ignored* (POSIX), and then no Ctrl-C can stop it, monitor or not.

Timed: from the (first) SIGINT to the end of the monitor's ``on_exception`` (its workers stopped; read from a
callback after it) and to the process's exit (mostly Lightning's teardown and the interpreter's own exit).
A fit that has not returned ``--hang-after`` seconds after its SIGINT counts as hung: its stacks are printed
(faulthandler on SIGUSR1 in the child, and ``py-spy dump`` when installed) and it is killed.  After each fit
the script looks for worker processes left behind (by an environment marker, so late-started workers count
too) and kills them.  The CPU load is made here: ``--load`` busy-loop processes at nice 10, each with its own
deadline, so they never outlive the run by long.

Usage:
    python benchmarks/ctrl_c_stress.py                     # 51 fits, 2 spinners
    python benchmarks/ctrl_c_stress.py --fits 9 --load 0   # quick, no load
    python benchmarks/ctrl_c_stress.py --probe-size 1200 --parallel 2   # clouds large enough for helper threads
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from common import REPO, Parser

MODES = ("self", "external", "double")
SLEEPS = (0.5, 5.0, 60.0)

JOBS = """
import os, time
from lightning_topo.monitoring.jobs import betti_job

def slow_job(items, **options):
    time.sleep(float(os.environ["STRESS_JOB_SLEEP"]))
    return betti_job(items, **options)
"""

CHILD = """
import faulthandler, json, os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's Ctrl-C, whatever was inherited
faulthandler.register(signal.SIGUSR1, all_threads=True)
import lightning.pytorch as pl, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from lightning_topo.callbacks import BettiMonitor, betti_monitor
from stress_jobs import slow_job

betti_monitor.betti_job = slow_job  # the monitor's Betti job, read when a monitor is made

ready, mode = sys.argv[1], sys.argv[2]

class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2))
    def forward(self, x):
        return self.body(x)
    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)

class Ready(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:  # epoch 0's measurement is in the workers
            with open(ready + ".tmp", "w") as f:
                json.dump({"time": time.time()}, f)
            os.replace(ready + ".tmp", ready)
            if mode == "self":
                os.kill(os.getpid(), signal.SIGINT)

    def on_exception(self, trainer, pl_module, exception):  # after the monitor's: its workers are stopped
        with open(ready + ".stopped", "w") as f:
            f.write(repr(time.time()))

if __name__ == "__main__":
    torch.manual_seed(0)
    probe = int(os.environ["STRESS_PROBE_SIZE"])
    y = torch.arange(max(240, 3 * probe)) % 2
    x = torch.randn(len(y), 4) + 3.0 * y[:, None].float()
    monitor = BettiMonitor(probe_size=probe, k=5, num_workers=2)
    trainer = pl.Trainer(max_epochs=100000, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[monitor, Ready()])
    trainer.fit(Net(), DataLoader(TensorDataset(x, y), batch_size=40))
    print("the fit ended without an interrupt", file=sys.stderr)
"""

#: The fits running now (pid: marker), killed with their workers when this script is stopped early.
LIVE: dict[int, str] = {}

SPINNER = "import os, time\nos.nice(10)\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def workers_marked(marker: str) -> list[int]:
    """Live processes (not zombies) whose environment carries this fit's marker: its worker processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def dump_stacks(pid: int) -> str:
    """py-spy's view of a stuck process (faulthandler's goes to the child's stderr on SIGUSR1)."""
    os.kill(pid, signal.SIGUSR1)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "(py-spy not installed)"
    out = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


def one_fit(directory: Path, index: int, mode: str, sleep: float, hang_after: float, rng: random.Random) -> dict:
    ready = directory / f"ready{index}.json"
    marker = f"STRESS_RUN={uuid.uuid4().hex}"
    env = dict(os.environ, STRESS_JOB_SLEEP=str(sleep), STRESS_RUN=marker.split("=", 1)[1])
    env["PYTHONPATH"] = os.pathsep.join([str(directory), str(REPO), env.get("PYTHONPATH", "")])
    err_path = directory / f"child{index}.err"
    with open(err_path, "w") as err:
        child = subprocess.Popen(
            [sys.executable, str(directory / "child.py"), str(ready), mode], stdout=err, stderr=err, env=env
        )
    LIVE[child.pid] = marker
    result = {"index": index, "mode": mode, "sleep": sleep, "hung": False, "signals": 0}
    start_deadline = time.time() + 300
    while not ready.exists():
        if child.poll() is not None or time.time() > start_deadline:
            result.update(error=f"the fit never reached epoch 1 (exit code {child.poll()})")
            break
        time.sleep(0.02)
    else:
        info = json.loads(ready.read_text())
        if mode == "self":
            sent = info["time"]
            result["signals"] = 1
        else:
            time.sleep(max(0.0, info["time"] + rng.uniform(0.0, 1.5) - time.time()))
            sent = time.time()
            child.send_signal(signal.SIGINT)
            result["signals"] = 1
            if mode == "double":
                time.sleep(rng.uniform(0.05, 0.5))
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
                    result["signals"] = 2
        try:
            child.wait(timeout=max(1.0, sent + hang_after - time.time()))
            result["seconds"] = time.time() - sent
            stopped = Path(str(ready) + ".stopped")
            if stopped.exists():  # Lightning's on_exception reached the callback after the monitor
                result["stopped"] = float(stopped.read_text()) - sent
        except subprocess.TimeoutExpired:
            result["hung"] = True
            result["stacks"] = dump_stacks(child.pid)
            time.sleep(1.0)  # faulthandler's dump reaches the child's stderr
    if child.poll() is None:
        child.kill()
        child.wait()
    result["returncode"] = child.returncode
    LIVE.pop(child.pid, None)
    time.sleep(0.5)  # a worker the trainer killed is reaped by then; one left behind is not
    left = workers_marked(marker)
    result["left_behind"] = len(left)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    stderr = err_path.read_text(errors="replace")
    result["dropped"] = "dropped" in stderr
    if result["hung"] or "error" in result or child.returncode not in (1, -signal.SIGINT, 130):
        result["stderr_tail"] = stderr[-3000:]
    return result


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--fits", type=int, default=51, help="interrupted fits (default 51: 17 per mode)")
    parser.add_argument("--load", type=int, default=2, help="busy-loop processes at nice 10 (default 2)")
    parser.add_argument("--hang-after", type=float, default=60.0, help="seconds after SIGINT that count as hung")
    parser.add_argument("--parallel", type=int, default=1, help="fits running at once (default 1)")
    parser.add_argument(
        "--probe-size",
        type=int,
        default=80,
        help="the monitor's probe (default 80; 1200 gives 600-point clouds, whose k-d tree queries use helper threads)",
    )
    parser.with_seed()
    args = parser.parse_args()
    os.environ["STRESS_PROBE_SIZE"] = str(args.probe_size)  # read by every child
    print(
        f"# {args.fits} fits ({args.parallel} at a time), probe {args.probe_size}, {args.load} busy-loop processes "
        f"(nice 10), hung = not "
        f"returned {args.hang_after:g} s after SIGINT; modes {'/'.join(MODES)} x job sleeps "
        f"{'/'.join(f'{s:g}' for s in SLEEPS)} s in turn",
        flush=True,
    )
    # stoppable whatever this script inherited (a background job of a shell ignores SIGINT): then a summary
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    budget = args.fits * (args.hang_after + 120) / args.parallel + 60  # the spinners' own deadline
    spinners = [subprocess.Popen([sys.executable, "-c", SPINNER.format(seconds=budget)]) for _ in range(args.load)]
    results: list[dict] = []
    pool = ThreadPoolExecutor(args.parallel)
    try:
        with tempfile.TemporaryDirectory(prefix="ctrl_c_stress_") as tmp:
            directory = Path(tmp)
            (directory / "stress_jobs.py").write_text(textwrap.dedent(JOBS))
            (directory / "child.py").write_text(textwrap.dedent(CHILD))
            runs = []
            for index in range(args.fits):
                mode, sleep = MODES[index % len(MODES)], SLEEPS[(index // len(MODES)) % len(SLEEPS)]
                rng = random.Random(args.seed * 100003 + index)
                runs.append(pool.submit(one_fit, directory, index, mode, sleep, args.hang_after, rng))
            for done in as_completed(runs):
                r = done.result()
                results.append(r)
                took = "HUNG" if r["hung"] else (f"{r['seconds']:.2f} s" if "seconds" in r else r.get("error"))
                took += f" (monitor stopped after {r['stopped']:.2f} s)" if "stopped" in r else ""
                print(
                    f"fit {r['index']:3d}  {r['mode']:8s} sleep {r['sleep']:4g} s  signals {r['signals']}  "
                    f"returned: {took}  exit {r['returncode']}  dropped-warning {'yes' if r['dropped'] else 'no '}  "
                    f"workers left {r['left_behind']}",
                    flush=True,
                )
                for key in ("stacks", "stderr_tail"):
                    if key in r:
                        print(textwrap.indent(r[key], "    | "), flush=True)
    except KeyboardInterrupt:
        print(f"== stopped early, after {len(results)} of {args.fits} fits", flush=True)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for pid, marker in list(LIVE.items()):  # fits cut short, and their workers
            for victim in [pid, *workers_marked(marker)]:
                try:
                    os.kill(victim, signal.SIGKILL)
                except OSError:
                    pass
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    times = [r["seconds"] for r in results if "seconds" in r]
    print("== summary")
    print(
        f"fits: {len(results)}; hung: {sum(r['hung'] for r in results)}; "
        f"never reached the interrupt: {sum('error' in r for r in results)}"
    )
    if times:
        print(
            f"seconds from SIGINT to the process's exit: median {statistics.median(times):.2f}, "
            f"max {max(times):.2f} (n={len(times)})"
        )
    stopped = [r["stopped"] for r in results if "stopped" in r]
    if stopped:
        print(
            f"seconds from SIGINT to the end of the monitor's on_exception (workers stopped): median "
            f"{statistics.median(stopped):.2f}, max {max(stopped):.2f} (n={len(stopped)}; a second SIGINT can "
            "end a fit before)"
        )
    for mode in MODES:
        own = [r["seconds"] for r in results if r["mode"] == mode and "seconds" in r]
        if own:
            print(f"  {mode:8s}: median {statistics.median(own):.2f} s, max {max(own):.2f} s (n={len(own)})")
    codes = sorted({r["returncode"] for r in results})
    counts = [f"{code}: {sum(r['returncode'] == code for r in results)}" for code in codes]
    print(f"exit codes: {', '.join(counts)}")
    print(
        f"fits that left worker processes behind: {sum(r['left_behind'] > 0 for r in results)} "
        f"({sum(r['left_behind'] for r in results)} processes)"
    )
    print(f"fits without the 'dropped' warning: {sum(not r['dropped'] for r in results)}")


if __name__ == "__main__":
    main()
