"""snnc's own Lava processes (not in Lava 0.10), each with a bit-accurate fixed_pt model.

One module per process; they sit in their own package because Lava's compiler executes every module
of a process's directory while it looks for process models. ``lif``: ``SnncLIF`` (reset kinds and ">=");
``izhikevich``: ``SnncIzhikevich`` (fixed-point Izhikevich); ``atrlif``: ``SnncATRLIF`` (the adaptive LIF
in Norse's LSNN form: reset, refractory scale, ">").
"""
