"""The ONNX export behind the in-browser widget: the written-out forward pass is the model,
its switches are the package's zero-ablations, and the graphs hold each model's weights.
The browser side (onnxruntime-web against torch) is tests/test_try_it.py."""

import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

import toybook
from toybook.analysis.ablation import overwrite_hook, run_with_ablations
from toybook.browser import goal_met, model_answers, try_it, widget_spec
from toybook.errors import ToybookError
from toybook.export import ScaledForward, export_onnx, export_shipped, scales, with_weights
from toybook.zoo import shipped_names

ONE_PER_ARCHITECTURE = ["max_of_2", "list_update", "list_update_shortformer", "majority", "addition",
                        "addition_1l_matched"]


def patterns(model, tokens):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(model.cfg.n_layers)], 1)


@pytest.mark.parametrize("name", shipped_names())
def test_the_written_out_forward_pass_is_the_model(name):
    model = toybook.load_model(name)
    tokens = model.toybook_task.generate(64, seed=5)
    with torch.no_grad():
        logits, pattern = ScaledForward(model)(tokens, *scales(model).values())
        assert torch.allclose(logits, model(tokens), atol=1e-4, rtol=0)
        assert torch.allclose(pattern, patterns(model, tokens), atol=1e-5, rtol=0)


def components(model):
    """Every head and MLP of ``model`` as the widget names them."""
    config = model.toybook_config
    heads = [f"L{layer}H{head}" for layer in range(config.n_layers) for head in range(config.n_heads)]
    return heads + ([] if config.attn_only else [f"MLP{layer}" for layer in range(config.n_layers)])


def zero_ablated(model, tokens, component):
    """Logits with ``component`` ("L1H0", "MLP0") zero-ablated by ``toybook.analysis``."""
    if component.startswith("MLP"):
        return run_with_ablations(model, tokens, {f"blocks.{component[3:]}.hook_mlp_out": "zero"})
    layer, head = map(int, component[1:].split("H"))
    zero = overwrite_hook((slice(None), slice(None), head), torch.zeros(()))
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", zero)])


@pytest.mark.parametrize("name", ONE_PER_ARCHITECTURE)
def test_each_switch_is_the_package_s_zero_ablation(name):
    model = toybook.load_model(name)
    tokens = model.toybook_task.generate(16, seed=6)
    forward = ScaledForward(model)
    for component in components(model):
        got = forward(tokens, *scales(model, (component,)).values())[0]
        assert torch.allclose(got, zero_ablated(model, tokens, component), atol=1e-4, rtol=0), component
        assert not torch.allclose(got, model(tokens), atol=1e-3), f"switching {component} off changed nothing"


def test_a_graph_with_another_model_s_weights_is_that_model_s_graph(tmp_path):
    first, second = toybook.load_model("max_of_2"), toybook.load_model("max_of_2_s3")
    template = onnx.load(str(export_onnx(first, tmp_path / "first.onnx")))
    own = ReferenceEvaluator(str(export_onnx(second, tmp_path / "second.onnx")))
    moved = ReferenceEvaluator(with_weights(template, second))
    tokens = second.toybook_task.all_inputs()[::37].numpy()
    feed = {"tokens": tokens, "head_scale": scales(second)["head_scale"].numpy()}
    for got, expected in zip(moved.run(None, feed), own.run(None, feed)):
        assert (got == expected).all()
    with torch.no_grad():
        assert abs(moved.run(None, feed)[0] - second(torch.from_numpy(tokens)).numpy()).max() < 1e-4


def test_the_site_s_graphs_are_every_shipped_model(tmp_path):
    sizes = export_shipped(tmp_path, ["max_of_2", "max_of_2_s1", "list_update"])
    assert sorted(sizes) == ["list_update", "max_of_2", "max_of_2_s1"]
    graph = onnx.load(str(tmp_path / "list_update.onnx"))
    onnx.checker.check_model(graph)
    assert [i.name for i in graph.graph.input] == ["tokens", "head_scale"]
    assert [o.name for o in graph.graph.output] == ["logits", "pattern"]


def test_a_component_the_model_lacks_is_refused_by_name():
    model = toybook.load_model("max_of_2")
    with pytest.raises(ToybookError, match="no component 'L1H0'.*L0H0"):
        scales(model, ("L1H0",))
    with pytest.raises(ToybookError, match="no component 'MLP0'"):
        scales(model, ("MLP0",))
    for bad in ("head", "L-1H0", "L0H0x", "MLP"):
        with pytest.raises(ToybookError, match=f"no component '{bad}'"):
            scales(model, (bad,))


def test_the_widget_spec_and_its_refusals():
    spec = widget_spec("addition")
    assert spec["models"][0]["name"] == "addition" and len(spec["models"]) == 9
    assert spec["fed_back"] and spec["answers"] == [11, 17] and spec["shown"] == "all"
    assert not widget_spec("majority")["fed_back"] and widget_spec("majority")["shown"] == "last"
    assert 'class="toybook-try"' in try_it("max_of_2")._repr_html_()
    with pytest.raises(ToybookError, match="no task 'sorting'"):
        try_it("sorting")
    with pytest.raises(ToybookError, match="not a shipped model of 'max_of_2'"):
        try_it("max_of_2", model="majority")
    goal = {"off": ["L2H0"], "expect": "right", "text": "t", "solved": "s"}
    with pytest.raises(ToybookError, match="has no \\['L2H0'\\]"):
        try_it("max_of_2", goal=goal)
    with pytest.raises(ToybookError, match="expects one of"):
        try_it("max_of_2", goal={**goal, "off": ["L0H0"], "expect": "better"})
    with pytest.raises(ToybookError, match="needs"):
        try_it("max_of_2", goal={"off": ["L0H0"]})


def test_the_answers_the_page_shows_are_written_one_at_a_time():
    model = toybook.load_model("addition")
    task = model.toybook_task
    tokens = task.generate(256, seed=8)
    assert (model_answers(model, tokens) == task.targets(tokens)).all()
    # a model that makes mistakes: with MLP0 off, its own earlier digits are fed back
    broken = model_answers(model, tokens, ("MLP0",))
    assert (broken != task.targets(tokens)).any()
    row, forward = tokens.clone(), ScaledForward(model)
    for i in range(6):  # greedy, one digit at a time
        row[:, 12 + i] = forward(row, *scales(model, ("MLP0",)).values())[0][:, 11 + i].argmax(-1)
    assert (broken == row[:, 12:]).all()


def test_goals_are_checked_as_the_page_checks_them():
    model = toybook.load_model("max_of_2")
    inputs = model.toybook_task.all_inputs()
    goal = {"off": ["L0H0"], "expect": "right", "text": "t", "solved": "s"}
    right = goal_met(model, inputs, goal)
    assert 0 < int(right.sum()) < len(inputs)
    assert (goal_met(model, inputs, {**goal, "expect": "wrong"}) == ~right).all()
    assert (goal_met(model, inputs, {**goal, "expect": "changes"}) == ~right).all()  # the model is always right
