"""What the benchmarks print about the machine they ran on, so every figure says where it came from."""
import platform
import sys

import torch


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def describe(device):
    return (f"machine: {cpu_name()}, {torch.get_num_threads()} threads, device {device}, "
            f"torch {torch.__version__}, python {sys.version.split()[0]}")
