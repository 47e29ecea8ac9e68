"""The fuzz campaign (``tests/fuzz_campaign.py``, ``make fuzz``) in CI: a few mutated files of each of the
five kinds, every one accepted or refused with a typed error, none hanging, allocating above the cap or
reading outside the model file. The campaign itself is checked to count each kind of failure it exists
to find: a planted untyped exception, an outside read, a canary value in an accepted graph, file code
that ran, a hang and an allocation over the cap."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

import fuzz_campaign as fc
from snnc.frontends import loader

CASES = 16          # per format: about 10 s for all five on 2 cores


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    return root, fc.build_seeds(root)


def campaign(prepared, formats, cases, **kwargs) -> fc.Campaign:
    root, seeds = prepared
    return fc.run_campaign(formats, cases, seed=kwargs.pop("seed", 0), jobs=2, root=root, seeds=seeds, **kwargs)


def test_every_format_is_typed_or_accepted_within_limits(prepared):
    result = campaign(prepared, fc.FORMATS, CASES)
    assert result.failure_count() == 0, f"\n{result.table()}\n{result.reproducers()}"
    for fmt in fc.FORMATS:
        counts = result.counts[fmt]
        assert counts["cases"] == CASES and counts["accepted"] + counts["typed"] == CASES, fmt
    assert sum(c["accepted"] for c in result.counts.values()) > 0      # mutants that still load are checked too
    assert all(result.counts[fmt]["typed"] > 0 for fmt in fc.FORMATS)


def test_cases_are_reproducible(prepared, tmp_path):
    root, seeds = prepared
    ctx = fc.make_context(root)
    made = [fc.make_case("onnx", seeds, ctx, 3, 11, tmp_path / name) for name in ("a", "b")]
    assert made[0][1] == made[1][1]
    assert made[0][0].read_bytes() == made[1][0].read_bytes()


def planted(monkeypatch, suffix: str, bug) -> None:
    """``load_model`` with ``bug(path)`` run first for files ending in ``suffix``."""
    original = loader.load_model

    def load_model(path, **options):
        if str(path).endswith(suffix):
            result = bug(path)
            if result is not None:
                return result
        return original(path, **options)

    monkeypatch.setattr(loader, "load_model", load_model)


def test_an_untyped_exception_is_counted_with_a_reproducer(prepared, monkeypatch):
    def bug(path):
        raise TypeError("planted")
    planted(monkeypatch, ".pt", bug)
    result = campaign(prepared, ("pt", "snnc"), 3)
    assert result.counts["pt"]["untyped"] == 3 and result.counts["snnc"]["untyped"] == 0
    assert result.failure_count() == 3
    assert "TypeError: planted" in result.reproducers()
    assert "--seed 0 --replay pt:0" in result.reproducers()


def test_an_outside_read_is_counted(prepared, monkeypatch):
    root, _ = prepared
    planted(monkeypatch, ".nir", lambda path: (root / "canary.bin").read_bytes() and None)
    result = campaign(prepared, ("nir",), 2)
    assert result.counts["nir"]["outside_read"] == 2
    assert str(root / "canary.bin") in result.reproducers()


def test_a_canary_value_in_an_accepted_graph_is_counted(prepared, monkeypatch):
    """What C code reads the audit hook cannot see: the canary's values in a graph show it."""
    from test_frontend_fuzz import float_graph

    def bug(path):
        graph = float_graph()
        nodes = tuple(dataclasses.replace(n, weight=np.full_like(n.weight, fc.CANARY_FLOAT)) if n.name == "d" else n
                      for n in graph.nodes)
        return dataclasses.replace(graph, nodes=nodes)
    planted(monkeypatch, ".snnc", bug)
    result = campaign(prepared, ("snnc",), 2)
    assert result.counts["snnc"]["outside_read"] == 2
    assert "canary value in d.weight" in result.reproducers()


def test_code_from_a_bundle_that_ran_is_counted(prepared, monkeypatch):
    """A loader that unpickled with weights_only=False would run the campaign's pickled callable."""
    import torch
    root, seeds = prepared
    ctx = fc.make_context(root)
    index = next(i for i in range(500)
                 if "pickled PickledCallable" in fc.make_case("pt", seeds, ctx, 0, i, root / f"probe-{i}")[1])
    planted(monkeypatch, ".pt", lambda path: torch.load(path, weights_only=False) and None)
    result = campaign(prepared, ("pt",), 1, indices=[index])
    assert result.counts["pt"]["outside_read"] == 1
    assert "code from the file ran" in result.reproducers()


def test_a_hang_is_killed_and_counted(prepared, monkeypatch):
    planted(monkeypatch, ".net", lambda path: time.sleep(60))
    started = time.monotonic()
    result = campaign(prepared, ("net",), 2, deadline_s=1.0)
    assert result.counts["net"]["hang"] == 2
    assert time.monotonic() - started < 20


def test_allocations_over_the_cap_are_counted(prepared, monkeypatch):
    def bug(path):
        if path.parent.name.endswith("-0"):
            np.empty(1 << 42, np.uint8)          # 4 TiB: MemoryError under the worker's RLIMIT_AS
        return np.ones(40 << 20, np.uint8).sum() and None    # 40 MiB, above a 16 MiB cap
    planted(monkeypatch, ".onnx", bug)
    result = campaign(prepared, ("onnx",), 2, cap_bytes=16 << 20)
    assert result.counts["onnx"]["over_limit"] == 2
    assert "MemoryError" in result.reproducers()


# ------------------------------------------------------------------------- what the campaign found

def test_bundle_layer_spec_is_checked_against_the_weights_before_building(tmp_path):
    """``Linear`` in=2**31 used to reach ``nn.Linear(2**31, 128)`` (an 1 TiB allocation) before
    ``load_state_dict`` could compare shapes."""
    import torch
    from conftest import DIGITS_MODEL
    from snnc.errors import ModelFileError
    from snnc.frontends.torch_bundle import load_bundle
    data = torch.load(DIGITS_MODEL, weights_only=True)
    data["layers"][0]["in"] = 2 ** 31
    torch.save(data, tmp_path / "big.pt")
    with pytest.raises(ModelFileError) as caught:
        load_bundle(tmp_path / "big.pt")
    assert str(caught.value) == (f"file '{tmp_path / 'big.pt'}': bundle entry layers[0]['in']: an integer in "
                                 "[1, 67108864], got int 2147483648")
    data["layers"][0]["in"] = 32
    data["state_dict"]["1.beta"] = 0.9
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match=r"bundle entry state_dict\['1.beta'\]: a tensor under a text key, "
                                             r"got float 0.9$"):
        load_bundle(tmp_path / "bad.pt")
    del data["state_dict"]["1.beta"]
    torch.save(data, tmp_path / "shape.pt")
    with pytest.raises(ModelFileError, match=r"bundle entry state_dict\['0.weight'\]: shape \(128, 32\) for "
                                             r"layers\[0\] \(Linear\), got shape \(128, 64\)$"):
        load_bundle(tmp_path / "shape.pt")


def test_a_view_reading_itself_is_refused_not_looped_on():
    """A ``.snnc`` Flatten whose source was itself made verify loop forever."""
    from snnc.errors import IRVerificationError
    from snnc.ir.verify import verify
    from test_frontend_fuzz import float_graph
    graph = float_graph()
    nodes = tuple(dataclasses.replace(n, source="f") if n.name == "f" else n for n in graph.nodes)
    with pytest.raises(IRVerificationError, match="field 'sources': limit no cycle without a neuron in it, got "
                                                  "cycle: f, d"):
        verify(dataclasses.replace(graph, nodes=nodes))


def test_a_linear_chain_is_bounded_and_must_chain():
    """Linear layers composed through a size x size float64 basis: 2^25 inputs used to ask for 8 PiB, and
    layers whose sizes do not chain raised torch's RuntimeError."""
    import snntorch as snn
    from torch import nn
    from snnc.errors import UnsupportedError
    from snnc.frontends.torch_frontend import from_torch
    leaky = lambda: snn.Leaky(beta=0.9, init_hidden=True)   # noqa: E731
    big = nn.Sequential(nn.Conv2d(1, 2, 1), leaky(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4, 3), leaky())
    with pytest.raises(UnsupportedError, match=r"node '2\+3\+4' field 'input size': limit at most 8192 values "
                                               r"into a chain of linear layers .*got 33554432$"):
        from_torch(big, (1, 4096, 4096))
    unchained = nn.Sequential(nn.Linear(4, 8), leaky(), nn.Linear(8, 6), nn.Linear(5, 3), leaky())
    with pytest.raises(UnsupportedError, match=r"node '2\+3' field 'shapes': limit layers that chain from input "
                                               r"shape \(8,\), got mat1 and mat2 shapes cannot be multiplied"):
        from_torch(unchained, (4,))
