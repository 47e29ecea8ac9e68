"""SpiNNaker backend: the lowered graph as a PyNN network for sPyNNaker 7.4.1 (real board or virtual
board) and for NEST 3.10 (software reference), plus a standalone script emitter."""
