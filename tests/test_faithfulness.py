"""Faithfulness as causal scrubbing scores it (toybook.analysis.faithfulness): one scale per
model, whose ends are exact, readings that can fail, and readings checked as data."""

from __future__ import annotations

import math
import re

import pytest
import torch

import toybook
from toybook.analysis.patching import head, mlp, neurons
from toybook.analysis.faithfulness import (
    Feature, Part, Reading, Scrubber, faithfulness, nothing_and_everything, plan, universe,
)
from toybook.errors import ToybookError, UnknownModelError, WrongModelError
from toybook.zoo import list_models

SHIPPED = [info.name for info in list_models()]
FIELDS = {"reading", "headline", "recovered", "n_whole", "n_scrubbed", "n_universe", "random_mean",
          "random_p95", "mlp_parts", "min_component_drop", "completeness_gap"}


@pytest.mark.parametrize("name", SHIPPED)
def test_nothing_scores_0_and_everything_1_on_every_shipped_model(name):
    model = toybook.load_model(name)
    task = toybook.load_shipped(name).task
    scrub = Scrubber(model, task, task.generate(32, seed=1), task.generate(64, seed=2))
    nothing, everything = nothing_and_everything(model, task, scrub)
    assert abs(nothing) <= 1e-6 and abs(everything - 1) <= 1e-6


@pytest.mark.parametrize("name, size, of", [("addition", 115, 180), ("addition_1l", 30, 90),
                                            ("list_update", 13, 22), ("majority", 384, 384),
                                            ("max_of_2", 1, 3)])
def test_the_universe_is_what_can_reach_an_answer(name, size, of):
    """Two-layer addition: 65 of its 180 components (layer 1 away from the prediction
    positions, both layers at the last position) cannot reach an answer logit."""
    model = toybook.load_model(name)
    components = universe(model, toybook.load_shipped(name).task)
    assert len(components) == size
    cfg = model.cfg
    assert of == cfg.n_layers * cfg.n_ctx * (cfg.n_heads + (0 if getattr(cfg, "attn_only", False) else 1))


def test_a_reading_can_fail_where_its_feature_is_wrong():
    """The head at `=` read as depending on the larger operand recovers the loss; read as
    depending on which slot holds it (so the value comes from another input), it does not."""
    rows = {row["reading"]: row for row in toybook.faithfulness_report("max_of_2", n_random=5, n_subsets=2)}
    assert rows["copies_the_larger"]["recovered"] >= 0.99
    assert rows["which_slot"]["recovered"] < 0.1
    assert rows["everything"]["recovered"] == 1 and rows["nothing"]["recovered"] == 0


def test_majority_s_reading_reads_the_mlp_and_beats_random_neurons():
    rows = {row["reading"]: row for row in toybook.faithfulness_report("majority", n_random=2, n_subsets=2)}
    headline = rows["counts_and_vote"]
    assert FIELDS <= set(headline) and headline["headline"]
    assert headline["mlp_parts"] == 128 and headline["n_whole"] < headline["n_universe"]
    assert headline["recovered"] >= 0.95 > rows["counts_and_random_neurons"]["recovered"]


def test_report_names_what_it_cannot_read():
    with pytest.raises(UnknownModelError, match="readings exist for"):
        toybook.faithfulness_report("nonesuch")
    with pytest.raises(WrongModelError):
        toybook.faithfulness_report("max_of_2", model=toybook.load_model("list_update"))


def _two_layer():
    model = toybook.load_model("list_update")
    return model, universe(model, toybook.get_task("list_update"))


def test_a_reading_outside_the_universe_or_twice_is_refused():
    model, components = _two_layer()
    with pytest.raises(ToybookError, match="cannot reach an answer logit"):
        plan([Part(head(1, 3, 0))], components, model.cfg.d_mlp)
    with pytest.raises(ToybookError, match="twice"):
        plan([Part(head(0, 3, 0)), Part(head(0, 3, 0))], components, model.cfg.d_mlp)
    majority = toybook.load_model("majority")
    inside = universe(majority, toybook.get_task("majority"))
    with pytest.raises(ToybookError, match="shares neurons"):
        plan([Part(neurons(0, 5, [1, 2])), Part(neurons(0, 5, [2, 3]))], inside, 256)
    with pytest.raises(ToybookError, match="twice"):
        plan([Part(mlp(0, 5)), Part(neurons(0, 5, [2, 3]))], inside, 256)
    with pytest.raises(ToybookError, match="twice"):
        plan([Part(neurons(0, 5, [2, 3])), Part(mlp(0, 5))], inside, 256)


def test_an_mlp_read_by_its_parts_resamples_the_neurons_it_does_not_name():
    atoms = plan([Part(neurons(0, 5, [1, 2]))], universe(toybook.load_model("majority"),
                                                         toybook.get_task("majority")), 256)
    assert atoms[neurons(0, 5, [1, 2])] == "whole"
    assert atoms[neurons(0, 5, [n for n in range(256) if n not in (1, 2)])] == "resampled"
    assert mlp(0, 5) not in atoms


def test_a_draw_that_does_not_agree_on_its_key_is_refused():
    model = toybook.load_model("max_of_2")
    task = toybook.get_task("max_of_2")
    wrong = Feature("the first operand", lambda tokens: tokens[:, 0],
                    lambda tokens, generator: task.generate(len(tokens), seed=3))
    reading = Reading("wrong", "a draw that ignores its key", (Part(head(0, 2, 0), wrong),), n_inputs=64)
    with pytest.raises(ToybookError, match="do not agree"):
        faithfulness(model, task, reading, n_random=1, n_subsets=1)


def test_minimality_names_a_component_that_does_not_matter():
    """On the list-update model, L1 at the first query is needed and a reading that adds the
    embedding-side head at position 0 gains nothing from it (drop below 0.01)."""
    model, _ = _two_layer()
    task = toybook.get_task("list_update")
    own = next(r for r in toybook.registry.readings()["list_update"](model) if r.headline)
    padded = Reading("padded", "own and L0 at 0", (*own.parts, Part(head(0, 0, 0))), n_inputs=200)
    result = faithfulness(model, task, padded, n_random=2, n_subsets=2)
    assert "L0H0@0" in result.inessential
    assert result.drops["L1H0@7"] > 0.01
    assert not math.isnan(result.completeness_gap)
    assert torch.isfinite(torch.tensor(result.random)).all()


def test_the_record_holds_every_model_with_readings():
    from toybook.analysis.faithfulness import recorded_reports

    recorded = recorded_reports()
    with_readings = {name for name in SHIPPED if re.sub(r"_s\d+$", "", name) in toybook.registry.readings()}
    assert set(recorded) == with_readings
    for name, rows in recorded.items():
        assert FIELDS <= set(rows[0]) and sum(row["headline"] for row in rows) == 1, name
        ends = {row["reading"]: row["recovered"] for row in rows if row["reading"] in ("everything", "nothing")}
        assert ends == {"everything": 1.0, "nothing": 0.0}, name


@pytest.mark.parametrize("name", ["max_of_2_s3", "list_update_s2", "majority_s1", "addition_1l_s2"])
def test_a_recorded_report_is_what_a_recompute_gives(name):
    """One model of each task: the headline's F and baseline again, to another CPU's rounding."""
    from toybook.analysis.faithfulness import model_readings, recorded_reports

    model, task, readings = model_readings(name)
    headline = next(r for r in readings if r.headline)
    again = faithfulness(model, task, headline, n_subsets=0, minimality=False)
    recorded = next(row for row in recorded_reports()[name] if row["headline"])
    assert abs(again.recovered - recorded["recovered"]) < 1e-3
    assert abs(again.random_p95 - recorded["random_p95"]) < 1e-2
    assert (again.n_whole, again.n_scrubbed, again.n_universe) == (
        recorded["n_whole"], recorded["n_scrubbed"], recorded["n_universe"])
