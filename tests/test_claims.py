"""Every chapter's key circuit claims hold on the shipped models, and can fail.

The claims live in `toybook.claims` so that `toybook reproduce` can check them on a
retrained model; the chapters' detailed tests sit in `test_*_circuit.py`.
"""

import re

import pytest
import torch

import toybook
from conftest import shipped_claim_results
from toybook.claims import check_claims, claims_for
from toybook.registry import claims

CLAIMS = list(claims())
from toybook.errors import UnknownModelError
from toybook.zoo import shipped_names


def test_every_shipped_model_has_claims():
    """Every shipped model is held to claims: its own, or a seed model to its preset's."""
    names = shipped_names()
    assert set(CLAIMS) == {name for name in names if not re.search(r"_s\d+$", name)}
    assert all(claims_for(name) for name in names)


@pytest.fixture(scope="module")
def results():
    return {name: shipped_claim_results(name) for name in CLAIMS}


@pytest.mark.parametrize(
    "name, claim", [(name, claim.name) for name in CLAIMS for claim in claims_for(name)]
)
def test_claim_holds_on_the_shipped_model(results, name, claim):
    result = next(r for r in results[name] if r.claim.name == claim)
    assert result.holds, str(result)


def test_claims_fail_on_an_untrained_model():
    checkpoint = toybook.load_shipped("max_of_2")
    untrained = toybook.build_model(checkpoint.model_config, seed=5)
    failing = {r.claim.name for r in check_claims("max_of_2", untrained) if not r.holds}
    assert {"qk_monotone", "ov_copies", "bound"} <= failing


def test_claims_of_an_unknown_model():
    with pytest.raises(UnknownModelError, match="no circuit claims for 'max_of_3'"):
        claims_for("max_of_3")


def test_result_line_says_pass_or_fail(results):
    line = str(results["max_of_2"][0])
    assert line.startswith("pass  qk_monotone") and "in [1, 1]" in line


def test_a_shared_measurement_is_made_once_per_model_and_forgotten_between_checks():
    from toybook.claims import per_model

    calls = []

    @per_model
    def expensive(model, k):
        calls.append(k)
        return k * 2

    first, second = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    assert [expensive(first, 3), expensive(first, 3), expensive(first, 4)] == [6, 6, 8]
    assert calls == [3, 4]
    expensive(second, 3)
    assert calls == [3, 4, 3], "another model is measured afresh"
    check_claims("max_of_2", toybook.load_model("max_of_2"))
    expensive(second, 3)
    assert calls == [3, 4, 3, 3], "check_claims forgets what the last model measured"
