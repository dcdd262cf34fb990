"""Linear probes: they read what is linearly there, on held-out inputs, and nothing from
features that carry no information; the shuffled-label twin stays at chance."""

import pytest
import torch

from toybook.analysis.probes import probe_accuracy
from toybook.errors import ToybookError


def labelled(n=1500, classes=5, d=16, informative=True, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=generator)
    features = torch.randn(n, d, generator=generator)
    if informative:
        features[:, :classes] += 3 * torch.nn.functional.one_hot(labels, classes)
    return features, labels


def test_a_probe_reads_a_linear_label_and_its_shuffled_twin_does_not():
    features, labels = labelled()
    result = probe_accuracy(features, labels, 1000)
    assert result.accuracy > 0.9
    assert result.shuffled < result.majority + 0.1 and result.n_test == 500


def test_a_probe_on_uninformative_features_stays_at_chance():
    features, labels = labelled(informative=False)
    result = probe_accuracy(features, labels, 1000)
    assert result.accuracy < result.majority + 0.1


def test_a_probe_cannot_read_a_sum_that_is_not_linear_in_its_features():
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randint(0, 10, (2, 3000), generator=generator)
    eye = torch.eye(10)
    features = torch.cat([eye[x], eye[y]], 1)  # one-hot digits: the sum is linear, mod 10 is not
    assert probe_accuracy(features, x + y, 2000, n_classes=19).accuracy > 0.95
    assert probe_accuracy(features, (x + y) % 10, 2000, n_classes=10).accuracy < 0.5


@pytest.mark.parametrize("n_train", [0, 1500, -3])
def test_bad_probe_splits_are_refused(n_train):
    features, labels = labelled()
    with pytest.raises(ToybookError, match="n_train must leave inputs on both sides"):
        probe_accuracy(features, labels, n_train)


def test_mismatched_probe_shapes_are_refused():
    features, labels = labelled()
    with pytest.raises(ToybookError, match=r"features \[N, d\] and labels \[N\]"):
        probe_accuracy(features, labels[:-1], 1000)
