"""What sPyNNaker actually wrote for each core, read back from its reports and data-spec database, and what
the compiler predicts it writes.

* ``placement_by_vertex_using_graph.rpt``: the cores (slices) of every population.
* ``ds.sqlite3`` region ``SynapseParams``: [n_neurons, n_synapse_types, log2 n_neurons, log2 n_types,
  log2 max delay, drop_late_spikes, spike buffer size, ring_buffer_shift per synapse type].
* region ``neuron_params`` (IF_curr_exp): [n_steps_per_timestep], then per neuron the LIF struct
  (neuron_model_lif_impl.h ``neuron_params_t``: V_init, V_rest, c_m, tau_m, I_offset, V_reset, T_refract_ms,
  refract_timer_init, time_step), then per neuron the static threshold, then per neuron the exponential
  synapses (tau_e, isyn_e, tau_i, isyn_i, time_step); every value an s16.15 word but the timer.
* regions ``PopTable`` + ``SynBlocks``: the master population table ([n_entries, n_addresses], 5-word entries
  key, mask, start|colour bits|count, core_mask|mask_shift, n_neurons|n_words; 1-word addresses with
  row_length - 1 in bits 0..7 and address / 16 in bits 8..31) and the synaptic matrix rows
  ([plastic words 0, n_fixed, plastic controls 0, fixed words...]; a fixed word is
  weight << 16 | delay << (atom bits + 1) | synapse type << atom bits | target).
"""
from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnc.errors import ModelFileError
from snnc.ir.graph import Graph
from snnc.ir.nodes import SpinnakerPopulation
from snnc.targets.spinnaker_spec import n_bits

ROW_HEADER_WORDS = 3
ADDRESS_SCALE = 16
SYNAPSE_TYPES = {"excitatory": 0, "inhibitory": 1}


@dataclass(frozen=True)
class CoreData:
    """One core of a population: its slice, ring-buffer shifts and the synapses of each incoming source
    block, as {row (pre index): sorted [(weight word, delay ticks, synapse type, local target)]}."""

    slice: tuple[int, int]
    core: tuple[int, int, int]
    ring_buffer_shift: tuple[int, ...]
    blocks: tuple[dict, ...]


def read_placements(run_dir: Path) -> dict[str, list[tuple[tuple[int, int], tuple[int, int, int]]]]:
    """vertex label -> [((lo, hi), (x, y, p)), ...] from the placement report."""
    text = _read(run_dir / "placement_by_vertex_using_graph.rpt")
    out: dict[str, list] = {}
    for block in text.split("**** Vertex: ")[1:]:
        label = block.split("'")[1]
        out[label] = [((int(lo), int(hi)), (int(x), int(y), int(p))) for lo, hi, x, y, p in
                      re.findall(r"Slice \((\d+):(\d+)\) on core \((\d+), (\d+), (\d+)\)", block)]
    return out


def read_population_cores(run_dir: Path, label: str, n_neurons: int, neurons_per_core: int) -> list[CoreData]:
    """The cores sPyNNaker placed a population on (from a run's placement report and data-spec database): each core's
    slice, ring-buffer shifts and synaptic rows per incoming block."""
    db = sqlite3.connect(f"file:{run_dir / 'ds.sqlite3'}?mode=ro", uri=True)
    try:
        cores = []
        for (lo, hi), core in read_placements(run_dir)[label]:
            regions = _regions(db, core)
            params = _words(regions["SynapseParams"])
            n_types = int(params[1])
            atom_bits = n_bits(min(n_neurons, neurons_per_core))
            blocks = _decode_blocks(_words(regions["PopTable"]), _words(regions["SynBlocks"]), atom_bits)
            cores.append(CoreData((lo, hi), core, tuple(int(s) for s in params[7:7 + n_types]), tuple(blocks)))
        return cores
    finally:
        db.close()


IF_CURR_EXP_WORDS = (("v_init", "v_rest", "cm", "tau_m", "i_offset", "v_reset", "tau_refrac", "refract_timer",
                      "time_step"), ("v_thresh",),
                     ("tau_syn_e", "isyn_exc", "tau_syn_i", "isyn_inh", "synapse_time_step"))


def read_neuron_words(run_dir: Path, label: str) -> list[tuple[tuple[int, int], dict[str, np.ndarray]]]:
    """Per core of an IF_curr_exp population: (slice, field -> per-neuron signed words of ``neuron_params``)."""
    db = sqlite3.connect(f"file:{run_dir / 'ds.sqlite3'}?mode=ro", uri=True)
    try:
        out = []
        for (lo, hi), core in read_placements(run_dir)[label]:
            words = _words(_regions(db, core)["neuron_params"])
            words = np.where(words >= 1 << 31, words - (1 << 32), words)
            n, fields, offset = hi - lo + 1, {}, 1
            for struct in IF_CURR_EXP_WORDS:
                block = words[offset:offset + n * len(struct)].reshape(n, len(struct))
                fields.update({name: block[:, k] for k, name in enumerate(struct)})
                offset += n * len(struct)
            out.append(((lo, hi), fields))
        return out
    finally:
        db.close()


def predicted_neuron_words(population: SpinnakerPopulation, v_start: np.ndarray, lo: int, hi: int,
                           dt_word: int) -> dict[str, np.ndarray]:
    """What the compiler expects in ``neuron_params`` for neurons lo..hi (``v_start``: the chip's start
    voltage words, ``network.start_voltage``)."""
    size = int(np.prod(population.shape))
    per_neuron = {name: np.broadcast_to(np.asarray(getattr(population, name), np.int64).reshape(-1), (size,))
                  for name in ("v_rest", "cm", "tau_m", "i_offset", "v_reset", "tau_refrac", "v_thresh",
                               "tau_syn_e", "tau_syn_i")}
    per_neuron.update(v_init=np.broadcast_to(np.asarray(v_start, np.int64).reshape(-1), (size,)),
                      refract_timer=np.zeros(size, np.int64), isyn_exc=np.zeros(size, np.int64),
                      isyn_inh=np.zeros(size, np.int64), time_step=np.full(size, dt_word),
                      synapse_time_step=np.full(size, dt_word))
    return {name: values[lo:hi + 1] for name, values in per_neuron.items()}


def _regions(db, core) -> dict[str, bytes]:
    rows = db.execute("SELECT region_label, content FROM region WHERE x=? AND y=? AND p=?", core).fetchall()
    return {label: content or b"" for label, content in rows}


def _words(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<u4").astype(np.int64)


def _decode_blocks(pop_table: np.ndarray, matrix: np.ndarray, atom_bits: int) -> list[dict]:
    """One dict per master-table entry (= per source vertex): row (pre index) -> sorted synapses.

    An entry's addresses are one block per projection from that source; a block holds a row per source
    atom, row index = source core * n_neurons + local index, and ends where the next block starts."""
    n_entries = int(pop_table[0])
    entries = pop_table[2:2 + 5 * n_entries].reshape(n_entries, 5)
    addresses = pop_table[2 + 5 * n_entries:]
    valid = [a for a in addresses if (a >> 8) != (1 << 24) - 1]
    starts = sorted({int(a >> 8) * ADDRESS_SCALE // 4 for a in valid}) + [len(matrix)]
    blocks = []
    for entry in entries:
        start, count = int(entry[2] & 0x1FFF), int(entry[2] >> 16)
        max_rows = ((int(entry[3] & 0xFFFF)) + 1) * int(entry[4] & 0xFFFF)
        rows: dict[int, list] = defaultdict(list)
        for address in addresses[start:start + count]:
            if (address >> 8) == (1 << 24) - 1:
                continue
            row_words = int(address & 0xFF) + 1 + ROW_HEADER_WORDS
            base = int(address >> 8) * ADDRESS_SCALE // 4
            end = next(s for s in starts if s > base)
            for index in range(min(max_rows, (end - base) // row_words)):
                row = matrix[base + index * row_words: base + (index + 1) * row_words]
                rows[index] += [_decode_word(int(w), atom_bits) for w in row[ROW_HEADER_WORDS:ROW_HEADER_WORDS + row[1]]]
        blocks.append({index: sorted(s) for index, s in rows.items() if s})
    return blocks


def _decode_word(word: int, atom_bits: int) -> tuple[int, int, int, int]:
    return (word >> 16, (word & 0xFFFF) >> (atom_bits + 1), (word >> atom_bits) & 1, word & ((1 << atom_bits) - 1))


def predicted_blocks(graph: Graph, population: SpinnakerPopulation, lo: int, hi: int) -> list[dict]:
    """What the compiler expects in one core's synaptic matrix, one dict per source (as decoded)."""
    by_source: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for name in population.inputs:
        node = graph.node(name)
        words = np.asarray(node.weight_word)
        delays = np.broadcast_to(np.asarray(node.delay_steps), words.shape)
        source = graph.producer(node.source).name
        for post, pre in zip(*np.nonzero(words)):
            if lo <= post <= hi:
                by_source[source][int(pre)].append(
                    (int(words[post, pre]), 1 + int(delays[post, pre]), SYNAPSE_TYPES[node.receptor], int(post - lo)))
    return [{row: sorted(s) for row, s in rows.items()} for rows in by_source.values()]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ModelFileError(str(path), f"sPyNNaker report missing: {exc}") from None
