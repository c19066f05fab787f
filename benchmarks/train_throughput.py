"""Training throughput (images/second) and peak memory for U-Net and FPN with ResNet34 at 256x256.

Each case runs in a fresh process so its peak memory is its own. On a GPU, every case is measured
twice: plain fp32, and the `full` config's fast path (bfloat16 autocast + channels_last), so the
figures compare as a ratio measured in one run.

    python benchmarks/train_throughput.py [--steps 10] [--batch-size N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_case(arch: str, batch_size: int, steps: int, size: int, fast_path: bool) -> dict[str, object]:
    """Time `steps` optimiser steps after two warm-up steps; runs inside the child process."""
    import torch

    sys.path.insert(0, str(ROOT))
    from reference.losses import get_loss
    from reference.models import create_model

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.manual_seed(0)
    model = create_model(arch, "resnet34").to(device)
    memory_format = torch.channels_last if fast_path else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = get_loss("ce_dice")
    images = torch.rand(batch_size, 3, size, size, device=device).to(memory_format=memory_format)
    masks = torch.randint(0, 3, (batch_size, size, size), device=device)
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast_path and cuda):
            loss = loss_fn(model(images).float(), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "arch": arch, "encoder": "resnet34", "size": size, "batch_size": batch_size, "steps": steps,
        "mode": ("amp+channels_last" if fast_path else "fp32") if cuda else "fp32",
        "device": torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)",
        "images_per_s": batch_size * steps / elapsed,
        "peak_rss_mib": peak_rss_mib, "rss_growth_mib": peak_rss_mib - baseline_rss / 1024,
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else None,
    }


def _child(args: argparse.Namespace, arch: str, fast_path: bool) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", arch, "--steps", str(args.steps), "--size", str(args.size),
               "--batch-size", str(args.batch_size)] + (["--fast-path"] if fast_path else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=0, help="default: 4 on a CPU, 32 on a GPU")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--fast-path", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available()
    args.batch_size = args.batch_size or (32 if cuda else 4)
    if args.child:
        print(json.dumps(run_case(args.child, args.batch_size, args.steps, args.size, args.fast_path)))
        return 0
    modes = (False, True) if cuda else (False,)
    rows = [_child(args, arch, fast) for arch in ("Unet", "FPN") for fast in modes]
    print(f"machine: {_cpu_name()}, {torch.get_num_threads()} threads; torch {torch.__version__}")
    print(f"{'model':<16}{'mode':<20}{'batch':>6}{'images/s':>10}{'peak RSS MiB':>14}{'peak GPU MiB':>14}  device")
    for r in rows:
        gpu = f"{r['peak_gpu_mib']:.0f}" if r["peak_gpu_mib"] is not None else "-"
        print(f"{r['arch'] + '-resnet34':<16}{r['mode']:<20}{r['batch_size']:>6}{r['images_per_s']:>10.2f}"
              f"{r['peak_rss_mib']:>14.0f}{gpu:>14}  {r['device']}")
    if len(rows) > 1:
        unet = [r for r in rows if r["arch"] == "Unet"]
        print(f"FPN/U-Net speed ratio ({rows[0]['mode']}): "
              f"{rows[len(modes)]['images_per_s'] / unet[0]['images_per_s']:.2f}")
        if cuda:
            print(f"U-Net amp+channels_last / fp32 speed ratio: {unet[1]['images_per_s'] / unet[0]['images_per_s']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
