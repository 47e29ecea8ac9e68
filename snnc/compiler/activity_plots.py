"""`snnc report --plot`: a spike raster of the first sample and the per-layer rate over steps, drawn from
an emulator run and an ``ActivityReport`` (matplotlib, imported only when plotting)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from snnc.compiler.activity_report import ActivityReport
from snnc.ir.graph import Graph
from snnc.simulators.loihi_emulator import run_loihi


def write_plots(graph: Graph, x: np.ndarray, report: ActivityReport, folder: Path, emulate=run_loihi) -> list[Path]:
    """raster.png (every producer's spikes for the first sample) and rates.png (per-layer spikes per
    neuron per step); returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder.mkdir(parents=True, exist_ok=True)
    pad = max(graph.latency.values(), default=0)
    sample = np.concatenate([x[:1], np.zeros((1, pad, *x.shape[2:]), x.dtype)], axis=1)
    traces = emulate(graph, sample, record_state=False)
    names = [n for n in report.layers if n in traces.spikes]
    fig, ax = plt.subplots(figsize=(10, 6))
    offset = 0
    for name in names:
        flat = traces.spikes[name][0].reshape(traces.spikes[name].shape[1], -1)
        t, neuron = np.nonzero(flat)
        ax.scatter(t, neuron + offset, s=2, label=name)
        offset += flat.shape[1]
        ax.axhline(offset - 0.5, color="grey", linewidth=0.5)
    ax.set(xlabel="step", ylabel="neuron (layers stacked)", title=f"{graph.name}: spikes of sample 0")
    ax.legend(loc="upper right", fontsize="small", markerscale=4)
    raster = folder / "raster.png"
    fig.savefig(raster, dpi=120, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in names:
        layer = report.layers[name]
        ax.plot(np.asarray(layer.spikes_per_step_profile) / layer.neurons, label=name)
    ax.set(xlabel="step", ylabel="spikes per neuron per step", title="per-layer rate (mean over samples)")
    ax.legend(fontsize="small")
    rates = folder / "rates.png"
    fig.savefig(rates, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [raster, rates]
