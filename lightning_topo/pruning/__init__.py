"""Building blocks of BettiPruning: filter selection, physical removal, the report, save and load."""

from lightning_topo.pruning.batchnorm import batchnorm_layers, recalibrate_batchnorm
from lightning_topo.pruning.report import (
    count_parameters,
    cpu_copy,
    cpu_latency,
    format_report,
    paired_cpu_latency,
    saved_size_bytes,
)
from lightning_topo.pruning.selection import alike_layers, select_filters
from lightning_topo.pruning.storage import load_pruned, save_pruned
from lightning_topo.pruning.structural import removable_filters, remove_filters

__all__ = [
    "alike_layers",
    "batchnorm_layers",
    "count_parameters",
    "cpu_copy",
    "cpu_latency",
    "format_report",
    "load_pruned",
    "paired_cpu_latency",
    "recalibrate_batchnorm",
    "removable_filters",
    "remove_filters",
    "save_pruned",
    "saved_size_bytes",
    "select_filters",
]
