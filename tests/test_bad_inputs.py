"""Tokens that cannot stand in their slot are refused by every shipped model, by name
(row, position, slot, what is allowed); prefixes stay legal; `toybook.off_format` is the
explicit way to run a model on off-format input."""

import re

import pytest
import torch

import toybook
from toybook.errors import InvalidTokensError


def valid(name, n=3):
    return toybook.get_task(name).generate(n, seed=0)


def changed(name, row, pos, value, n=3):
    tokens = valid(name, n)
    tokens[row, pos] = value
    return tokens


OFF_FORMAT = [
    # (model, tokens, message)
    ("list_update", changed("list_update", 0, 0, 7), "position 0 (BOS) must be BOS (token 50), but row 0 has 7"),
    ("list_update", changed("list_update", 2, 4, 3), "position 4 (nl_0) must be nl_0 (token 51), but row 2 has 3"),
    ("list_update", changed("list_update", 1, 5, 3), "position 5 (idx) must be a token in 0..2, but row 1 has 3"),
    ("list_update", changed("list_update", 1, 2, 50), "position 2 (a1) must be a token in 0..49, but row 1 has 50"),
    ("list_update", changed("list_update", 0, 6, 51), "position 6 (elt) must be a token in 0..49, but row 0 has 51"),
    ("addition", changed("addition", 0, 5, 3), "position 5 (+) must be + (token 10), but row 0 has 3"),
    ("addition", changed("addition", 1, 11, 10), "position 11 (=) must be = (token 12), but row 1 has 10"),
    ("addition", changed("addition", 2, 0, 12), "position 0 (x4) must be a token in 0..9, but row 2 has 12"),
    ("addition", changed("addition", 0, 7, 11), "position 7 (y3) must be a token in 0..9, but row 0 has 11"),
    ("addition_1l", changed("addition", 0, 5, 0), "position 5 (+) must be + (token 10), but row 0 has 0"),
    ("max_of_2", changed("max_of_2", 0, 2, 5), "position 2 (=) must be = (token 64), but row 0 has 5"),
    ("max_of_2", changed("max_of_2", 1, 0, 64), "position 0 (a) must be a token in 0..63, but row 1 has 64"),
]


@pytest.mark.parametrize("name, tokens, message", OFF_FORMAT)
def test_off_format_tokens_are_refused_by_name(name, tokens, message):
    model = toybook.load_model(name)
    for run in (model, model.run_with_cache, lambda t: model.run_with_hooks(t, fwd_hooks=[])):
        with pytest.raises(InvalidTokensError, match=re.escape(message)):
            run(tokens)
    prefix = tokens[:, : message_position(message) + 1]
    with pytest.raises(InvalidTokensError, match=re.escape(message)):
        model(prefix)  # the bad token is inside the prefix: still refused
    with toybook.off_format(model):
        assert model(tokens).shape == (len(tokens), tokens.shape[1], model.cfg.d_vocab_out)
    with pytest.raises(InvalidTokensError):
        model(tokens)  # the opt-out ends with its block


def message_position(message):
    return int(re.search(r"position (\d+)", message).group(1))


@pytest.mark.parametrize("name", ["list_update", "addition", "majority", "max_of_2"])
def test_every_prefix_of_a_valid_sequence_is_legal(name):
    model, tokens = toybook.load_model(name), valid(name)
    for length in range(1, tokens.shape[1] + 1):
        assert model(tokens[:, :length]).shape == (3, length, model.cfg.d_vocab_out)


def test_off_format_still_checks_the_vocabulary_and_a_model_without_a_task_checks_only_that():
    model = toybook.load_model("max_of_2")
    with toybook.off_format(model), pytest.raises(InvalidTokensError, match="token 65 .* out of range"):
        model(torch.tensor([[1, 2, 65]]))
    bare = toybook.build_model(model.toybook_config)
    assert bare(torch.tensor([[64, 64, 3]])).shape == (1, 3, 64)  # no task attached: no slots
    toybook.attach_task(bare, toybook.get_task("max_of_2"))
    with pytest.raises(InvalidTokensError, match=re.escape("position 0 (a) must be a token in 0..63")):
        bare(torch.tensor([[64, 64, 3]]))
