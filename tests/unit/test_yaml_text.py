"""Configs are read through libyaml when their nesting is provably shallow, else PyYAML's
own loader: the same data either way, and no deep text ever reaches libyaml (it crashes)."""

from __future__ import annotations

import yaml
from hypothesis import given, settings, strategies as st

from fs_bus.config import yaml_text

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=20))
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)


def depth(data) -> int:
    if isinstance(data, dict):
        return 1 + max(map(depth, data.values()), default=0)
    if isinstance(data, list):
        return 1 + max(map(depth, data), default=0)
    return 0


@settings(deadline=None)
@given(documents, st.booleans())
def test_both_loaders_read_the_same_data(data, flow):
    text = yaml.safe_dump(data, default_flow_style=flow)
    assert yaml_text.load(text) == yaml.safe_load(text) == data


@settings(deadline=None, max_examples=50)  # deep text takes PyYAML's loader a while
@given(st.integers(1, 700), st.sampled_from(["[", "{a: ", "- ", "\n  - "]), st.booleans())
def test_the_bound_is_never_below_the_real_depth(n, opener, pad):
    closer = {"[": "]", "{a: ": "}"}.get(opener, "")
    text = ("#" * 600 + "\n" if pad else "") + opener * n + "x" + closer * n
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        return  # deeper than anyone may nest; the bound is checked on what loads
    assert yaml_text.nesting_bound(text) >= depth(data)


def test_deep_text_is_refused_without_crashing():
    text = "[" * 20_000 + "]" * 20_000  # libyaml segfaults on this; PyYAML's loader refuses it
    assert yaml_text.nesting_bound(text) > yaml_text.C_LOADER_MAX_DEPTH
    try:
        yaml_text.load(text)
    except RecursionError:
        pass
