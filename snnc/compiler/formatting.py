"""The text the CLI prints, made from typed results only (no file is read and nothing is run here): the
compile summary, the run and verify outcomes, the activity report, the pass list."""
from __future__ import annotations

from pathlib import Path

from snnc.backends.registry import BACKENDS
from snnc.compiler.activity_report import ActivityReport
from snnc.compiler.liveness import liveness_lines
from snnc.compiler.services import Decision, FloatCheck, RunOutcome, VerifyOutcome


def compile_summary(model: Path, target: str, out: Path, report: dict) -> str:
    """What ``snnc compile`` prints: where it wrote, then the compile report's summary."""
    return f"compiled {model} for {target} -> {out}\n" + format_report(report)


def export_summary(model: Path, fmt: str, out: Path, reload_options: dict | None = None) -> str:
    """What ``snnc export`` prints: and the load options reading ``out`` back needs (the file does not store them)."""
    line = f"exported {model} as {fmt} -> {out}"
    if not reload_options:
        return line
    return f"{line} (load it with {' '.join(option_flags(reload_options))}: the file does not store them)"


def option_flags(options: dict) -> list[str]:
    """Load options as the CLI flags that give them (``spike_exp=3`` -> ``--spike-exp 3``; a true flag alone)."""
    flags = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        flags += [flag] if value is True else [flag, text]
    return flags


def numbered_passes(names: list[str]) -> list[str]:
    """The passes of a pipeline, one line each, numbered from 1."""
    return [f"{i + 1}. {name}" for i, name in enumerate(names)]


def format_report(report: dict) -> str:
    """The compile summary: pruning, the target's lowering table, cores, timestep compression."""
    backends = BACKENDS[report["target"]]     # compile_model's target, or checked by compiled_backends
    lines = prune_lines(report["passes"].get("prune", {})) + backends.lowering_lines(report)
    lines += core_lines(report) + timestep_lines(report["passes"].get("compress_timesteps", {}))
    return "\n".join(model_option_lines(report) + lines + liveness_lines(report.get("liveness", {})))


def model_option_lines(report: dict) -> list[str]:
    """What the model file did not say and the command line stated (NIR's time step and reset kind)."""
    options = report.get("model_options") or {}
    if not options:
        return []
    return ["model options given (--dt, --reset, --comparison, --producer; not stored in the model file): " +
            ", ".join(f"{key}={value}" for key, value in sorted(options.items()))]


def timestep_lines(compression: dict) -> list[str]:
    """The run-time policy compress_timesteps chose (nothing if it did not run)."""
    if "chosen" not in compression:
        return []
    chosen, reference, check = compression["chosen"], compression["reference"], compression["validation"]
    exit_rule = "never" if chosen["exit_margin"] is None else f"at a lead of {chosen['exit_margin']} spikes"
    return [f"timestep compression (error budget {compression['epsilon']:.2%}): static input "
            f"{'yes' if chosen['static_input'] else 'no'}, v_init {chosen['v_init_fraction']:g} x threshold, "
            f"threshold x {chosen['threshold_scale']:g}, {chosen['steps']} of {reference['steps']} steps, "
            f"early exit {exit_rule}",
            f"  calibration: {chosen['mean_steps']:.2f} mean steps ({chosen['mean_hardware_steps']:.2f} with "
            f"pipeline latency), accuracy {chosen['accuracy']:.2%} vs {reference['accuracy']:.2%} at "
            f"{reference['steps']} steps; check half: {check['worse']} worse, {check['better']} better of "
            f"{check['samples']}"]


def core_lines(report: dict) -> list[str]:
    """Cores from placement (what the mapping uses) and the per-group budget check's upper bound."""
    placed = report["passes"].get("place_cores", {})
    bound = report["passes"].get("check_design_rules", {}).get("cores_total")
    lines = []
    if "cores_used" in placed:
        extra = f" + {placed['synapse_cores']} synapse cores" if placed.get("synapse_cores") else ""
        lines.append(f"cores: {placed['cores_used']} placed{extra} (lower bound {placed['lower_bound']}, "
                     f"strategy {placed['strategy']})")
    if bound is not None:
        lines.append(f"cores if every group had its own: {bound}")
    return lines


def prune_lines(prune: dict) -> list[str]:
    """Per-layer sparsity and relative membrane error of the prune pass (nothing if it did not run)."""
    if not prune.get("changed"):
        return []
    lines = [f"pruned ({prune['method']}): {prune['sparsity']:.1%} of dense weights are zero "
             f"(target {prune['target_sparsity']:.1%})"]
    for name, layer in prune["layers"].items():
        error = layer["rel_membrane_error"]
        lines.append(f"  {name:<14}{layer['sparsity']:>7.1%} zero  {layer['kept']:>7}/{layer['total']:<7} kept  "
                     f"membrane error {'-' if error is None else f'{error:.2%}'}  ({layer['solver']}"
                     f"{', bias corrected' if layer['bias_corrected'] else ''})")
    return lines


def mapping_lines(report: dict) -> list[str]:
    """Fan-in partitioning and placement summary of a compile report."""
    passes, lines = report.get("passes", {}), []
    for name, split in passes.get("partition_fanin", {}).get("splits", {}).items():
        lines.append(f"fan-in partitioning: '{name}' into group '{split['group']}' "
                     f"(fan-in {split['fan_in']}) -> {split['k']} partial-sum units")
    for name, plan in passes.get("partition_fanin", {}).get("synapse_cores", {}).items():
        lines.append(f"fan-in partitioning: '{name}' -> {plan['n_synapse_cores']} synapse core(s) per neuron core "
                     f"({plan['events_per_tick']:g} planned synaptic events per tick, at most "
                     f"{plan['per_core_events']:g} per synapse core of {plan['budget_per_core']:g})")
    place = passes.get("place_cores", {})
    if "cores_used" in place:
        use = ", ".join(f"{k} {v:.1%}" for k, v in place["utilisation_mean"].items())
        extra = f" + {place['synapse_cores']} synapse core(s)" if place.get("synapse_cores") else ""
        lines.append(f"placement: {place['cores_used']} core(s){extra}, lower bound {place['lower_bound']} "
                     f"(strategy {place.get('strategy', '-')}); mean utilisation {use}")
    return lines


def run_text(backend: str, run: RunOutcome, decision: Decision) -> str:
    """What ``snnc run`` prints: samples, steps and output spike counts, then the decision lines."""
    text = [f"{backend}: {len(run.x)} samples x {run.x.shape[1]} steps; output '{run.output}' spike counts "
            f"{run.output_counts.tolist()}"]
    return "\n".join(text + decision_lines(decision))


def decision_lines(decision: Decision) -> list[str]:
    """The compressed policy's steps (when there is one) and the accuracy (with labels)."""
    lines = []
    if decision.policy is not None:
        policy = decision.policy
        exit_rule = "never" if policy.exit_margin is None else f"at a lead of {policy.exit_margin} spikes"
        lines.append(f"compressed policy: at most {policy.max_steps} steps, early exit {exit_rule}; "
                     f"mean steps {policy.mean_steps:.2f}")
    if decision.accuracy is not None:
        correct = int(round(decision.accuracy * decision.labelled))
        lines.append(f"accuracy: {decision.accuracy:.4f} ({correct}/{decision.labelled})")
    return lines


_FLOAT_NOT_COMPARED = {
    FloatCheck.ALREADY_INTEGER: "float reference: none (the source model is already in the target's integer "
                                "formats)",
    FloatCheck.STATIC_INPUT: "float reference: not compared (the input was made static by --compress-timesteps; "
                             "the float model takes the spike trains)",
}


def verify_text(outcome: VerifyOutcome) -> str:
    """What ``snnc verify`` prints: the reference comparison (or that it was skipped), the netx
    comparison (``--reference netx``), then the float model's agreement (or why it was not compared)."""
    lines = list(outcome.reference_lines) if outcome.reference_lines is not None else \
        [f"{outcome.reference} comparison skipped"]
    lines += list(outcome.netx_lines)
    if outcome.float_check is FloatCheck.COMPARED:
        return "\n".join(lines + list(outcome.agreement_lines) + list(outcome.liveness_lines))
    return "\n".join(lines + [_FLOAT_NOT_COMPARED[outcome.float_check]])


def format_activity(report: ActivityReport) -> str:
    """Human-readable table of an activity report."""
    lines = [f"activity over {report.samples} sample(s) x {report.steps_run} steps (emulator)"
             + (f"; accuracy {report.accuracy:.4f}" if report.accuracy is not None else "")]
    if report.policy_mean_steps is not None:
        lines.append(f"compressed policy: early exit after {report.policy_mean_steps:.2f} steps on average "
                     f"(+ pipeline latency: {report.mean_steps_run:.2f} steps run; nothing counted after)")
    lines.append(f"{'layer':<22}{'neurons':>8}{'spikes/sample':>15}{'spikes/step':>13}{'rate/neuron/step':>18}")
    for name, layer in report.layers.items():
        lines.append(f"{name:<22}{layer.neurons:>8}{layer.spikes_per_sample:>15.1f}"
                     f"{layer.spikes_per_step:>13.2f}{layer.rate_per_neuron_per_step:>18.4f}")
    lines.append(f"{'synapse':<22}{'SynOps/sample':>23}")
    for name, syn in report.synapses.items():
        once = "  (static input: computed once)" if syn.computed_once else ""
        lines.append(f"{name:<22}{syn.synops_per_sample:>23.1f}{once}")
    totals = report.totals
    lines.append(f"total SynOps/sample {totals.synops_per_sample:.1f}; neuron updates/sample "
                 f"{totals.neuron_updates_per_sample:.0f}; "
                 f"spikes/sample {totals.spikes_per_sample:.1f}")
    if report.messages_per_step is not None:
        m = report.messages_per_step
        lines.append(f"messages/step: inter-core {m['inter_core']:.2f}, intra-core {m['intra_core']:.2f}, "
                     f"from host {m['from_host']:.2f}")
    if report.energy_estimate is not None:
        e = report.energy_estimate
        parts = ", ".join(f"{k[:-2]} {v * 1e9:.3f} nJ" for k, v in e.parts_j.items())
        lines.append(f"energy per sample: {e.total_j * 1e9:.3f} nJ ({parts})")
        lines.append(f"  {e.label}; constants: {e.model.source}")
    return "\n".join(lines)


def report_text(report: dict, activity: ActivityReport | None, notes: list[str]) -> str:
    """What ``snnc report`` prints: the compile summary and mapping, the activity table when measured,
    then the notes."""
    parts = [format_report(report)] + mapping_lines(report)
    if activity is not None:
        parts.append(format_activity(activity))
    return "\n".join(parts + notes)


def missing_input_note(name: str, size: int, digits_size: int) -> str:
    """Why ``snnc report`` measured no activity: the default digits input does not fit the model's."""
    return f"activity: pass --input (the default digits input has {digits_size} values, '{name}' takes {size})"


def plots_note(paths: list[Path]) -> str:
    """The plot files ``snnc report --plot`` wrote."""
    return "plots: " + ", ".join(str(p) for p in paths)
