import pytest
import torch

import toybook


@pytest.fixture(autouse=True)
def _two_threads():
    """Tests run with the thread count the shipped models were trained with."""
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def max_of_2_checkpoint():
    return toybook.load_shipped("max_of_2")
