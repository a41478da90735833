"""The measure registry: only what is asked is computed, shared parts once, user measures by name."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from rnn_prune.expansion import (
    DEFAULT_MEASURES,
    MEASURES,
    BipartiteGraph,
    connected_components,
    layer_expansion,
    register_measure,
)
from rnn_prune.expansion import graph as graph_module
from rnn_prune.expansion.measures import Option, measure, nonnegative_int


@pytest.fixture
def scoped_registry():
    with MEASURES.scoped() as registry:
        yield registry


def test_a_measure_carries_its_name_doc_and_options():
    baseline = MEASURES["random_delta_r"]
    assert baseline.name == "random_delta_r" and not baseline.default and baseline.doc.startswith("``r − mean μ``")
    assert {name: option.default for name, option in baseline.options.items()} == {"samples": 8, "seed": 0}
    assert MEASURES["is_ramanujan"].flag and MEASURES["is_ramanujan"].missing is None
    assert math.isnan(MEASURES["delta_r"].missing)
    assert list(DEFAULT_MEASURES) == [name for name in MEASURES if MEASURES[name].default]
    assert "random_delta_r" not in DEFAULT_MEASURES


def test_result_reads_the_registry_for_what_was_not_computed():
    e = layer_expansion(np.ones((4, 6)), measures=["num_edges"])
    assert e.num_edges == e["num_edges"] == 24 and math.isnan(e.lambda1) and e.is_ramanujan is None
    with pytest.raises(AttributeError, match="'beauty' is neither computed here nor a registered measure"):
        _ = e.beauty


def test_measure_declares_its_options_as_keyword_parameters():
    with pytest.raises(ValueError, match=r"keyword-only parameters \['k'\] must be its declared options \[\]"):
        measure(lambda graph, *, k: 0.0, name="bad")
    with_option = measure(lambda graph, *, k: float(k), name="k_times", options={"k": Option(2, "k", nonnegative_int)})
    assert with_option(BipartiteGraph(np.ones((2, 2)))) == 2.0
    assert layer_expansion(np.ones((2, 2)), measures=[with_option], options={"k_times": {"k": 5}})["k_times"] == 5.0
    with pytest.raises(ValueError, match="k_times.k must be >= 0, got -1"):
        layer_expansion(np.ones((2, 2)), measures=[with_option], options={with_option: {"k": -1}})


def test_only_asked_measures_are_computed_and_spectra_are_shared(monkeypatch):
    calls = []
    original = graph_module.connected_singular_values

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(graph_module, "connected_singular_values", counting)
    mask = np.random.default_rng(0).random((300, 200)) < 0.2
    e = layer_expansion(mask, measures=["num_edges", "avg_left_degree"])
    assert calls == [] and e.num_edges == mask.sum() and math.isnan(e.lambda1) and math.isnan(e.imdb)
    assert e.is_ramanujan is None and e.reason == ""
    e = layer_expansion(mask, measures=["lambda1", "mu", "spectral_gap", "delta_r", "delta_s", "is_ramanujan"])
    assert len(calls) == 1  # one spectrum serves all six
    assert math.isnan(e.normalized_gap) and math.isnan(e.weighted_mu)
    full = layer_expansion(mask)
    assert (e.lambda1, e.mu, e.delta_r, e.is_ramanujan) == (full.lambda1, full.mu, full.delta_r, full.is_ramanujan)


def test_graph_caches_its_shared_parts():
    g = BipartiteGraph(np.ones((4, 5)))
    assert g.components is g.components and g.spectrum is g.spectrum
    assert g.spectrum == pytest.approx((math.sqrt(20), 0.0), abs=1e-9)


def test_registered_measure_is_computed_and_scoped(scoped_registry):
    @register_measure("edges_per_right_node")
    def edges_per_right_node(graph: BipartiteGraph) -> float:
        return graph.num_edges / graph.num_right

    e = layer_expansion(np.ones((4, 6)), measures=["delta_r", "edges_per_right_node"])
    assert e.values["edges_per_right_node"] == 6.0
    assert e.as_dict(["edges_per_right_node", "delta_r"])["edges_per_right_node"] == 6.0
    assert "edges_per_right_node" not in layer_expansion(np.ones((4, 6))).values  # not in the default set
    with pytest.raises(ValueError, match="measure 'edges_per_right_node' is already registered"):
        register_measure("edges_per_right_node")(edges_per_right_node)
    register_measure("edges_per_right_node", replace=True)(lambda g: 1.0)
    assert layer_expansion(np.ones((4, 6)), measures=["edges_per_right_node"]).values == {"edges_per_right_node": 1.0}


def test_scoped_registry_forgets_what_was_registered_inside():
    with MEASURES.scoped():
        register_measure("only_inside")(lambda g: 1.0)
        assert "only_inside" in MEASURES
    assert "only_inside" not in MEASURES


def test_measure_named_by_module_path(tmp_path: Path, monkeypatch):
    (tmp_path / "my_measures_h1.py").write_text(
        "def edges_per_left_node(graph):\n    return graph.num_edges / graph.num_left\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ["delta_r", "my_measures_h1.edges_per_left_node"]
    assert [m.name for m in MEASURES.resolve(names)] == ["delta_r", "edges_per_left_node"]
    e = layer_expansion(np.ones((4, 6)), measures=["my_measures_h1.edges_per_left_node"])
    assert e.values == {"edges_per_left_node": 4.0} and "edges_per_left_node" not in MEASURES  # not registered
    sys.modules.pop("my_measures_h1", None)


@pytest.mark.parametrize(
    ("names", "match"),
    [
        ("delta_r", "measures must be a list of measure names"),
        (["delta_r", "beauty"], r"measures=\['beauty'\] are not measures"),
        (["nowhere_h1.measure"], "cannot import measure 'nowhere_h1.measure'"),
        ([3], r"measures=\[3\] are not measures"),
    ],
)
def test_resolve_rejects(names, match):
    with pytest.raises(ValueError, match=match):
        MEASURES.resolve(names)
    with pytest.raises(ValueError, match=match):
        layer_expansion(np.ones((2, 2)), measures=names)


@pytest.mark.parametrize(("name", "match"), [("a/b", "no '/'"), ("", "must be a string"), (3, "must be a string")])
def test_register_measure_rejects_bad_names(scoped_registry, name, match):
    with pytest.raises(ValueError, match=match):
        register_measure(name)(lambda g: 0.0)


def test_connected_components_counts_isolated_and_nonisolated():
    # 0-1, 1-2 | 3-4 | 5 isolated
    c = connected_components(np.array([0, 1, 3]), np.array([1, 2, 4]), 6)
    assert (c.num, c.num_nonisolated, c.largest) == (3, 2, 3)
    assert c.labels[0] == c.labels[2] != c.labels[3] and c.giant == c.labels[0]
    empty = connected_components(np.array([], dtype=int), np.array([], dtype=int), 0)
    assert (empty.num, empty.largest, empty.giant) == (0, 0, -1)


def test_register_measure_rejects_a_non_callable(scoped_registry):
    with pytest.raises(ValueError, match="measure 'three' must be a callable of the graph, got 3"):
        register_measure("three")(3)
    assert "three" not in MEASURES
