"""Odd and hostile input: each is one clear problem, never a traceback or a late failure."""

from __future__ import annotations

import math

import pytest

from visim.config.errors import ConfigError
from visim.config.load import load_config

DEMO = "configs/demo.yaml"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("key", ["train.optimizer.lr", "train.grad_clip", "test.metric.p"])
def test_numeric_fields_reject_nan_and_inf_at_validate_time(key, value):
    overrides = [f"{key}={value!r}".replace("inf", ".inf").replace("nan", ".nan")]
    if key == "test.metric.p":
        overrides.insert(0, "test.metric={name: minkowski, p: 3}")
    with pytest.raises(ConfigError) as caught:
        load_config(DEMO, overrides)
    [problem] = caught.value.problems
    assert problem.path == f"$.{key}"
    assert str(problem.message).startswith("must be a finite number (got ")
