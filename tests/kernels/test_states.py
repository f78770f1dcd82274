"""Market states at the later decision years (kernels/states.py) and the valuation's
reduction by state: the reference's market, balanced nested bins, non-anticipativity,
and the grouped means equal on every chunking, engine and twin."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.app.staged import staged_states
from siteopt.app.valuation import value_options
from siteopt.kernels.cashflows import option_npv
from siteopt.kernels.market import market_paths
from siteopt.kernels.reduce import BLOCK, Grouping, group_means
from siteopt.kernels.sites import chunk_market
from siteopt.kernels.states import market_states, observed_month, state_tree
from siteopt.kernels.valuation import ValuationCache
from siteopt.model.load import load_scenario, with_simulation

from .helpers import SCENARIO_FILES

N = 2_500  # three reduction blocks, the last one partial


@pytest.fixture(scope="module")
def texas():
    return with_simulation(load_scenario(SCENARIO_FILES["texas"]), N, None)


@pytest.fixture(scope="module")
def hydro():
    return with_simulation(load_scenario(SCENARIO_FILES["stranded-hydro"]), N, None)


def test_states_are_the_reference_market_of_the_december_before(texas):
    portfolio = kernel_inputs(texas)
    states = market_states(portfolio)
    assert states.years == (2028, 2029)
    assert states.months == (11, 23)  # 2027-12 and 2028-12 of a horizon from 2027-01
    assert observed_month(portfolio, 2027) == 0  # nothing before the start
    idx = np.arange(N, dtype=np.int64)
    paths = market_paths(portfolio, idx, xp=np)
    np.testing.assert_array_equal(states.hashprice, paths.hashprice[:, [11, 23]])
    np.testing.assert_array_equal(states.btc_usd, paths.btc_usd[:, [11, 23]])
    ctx = chunk_market(portfolio, idx, xp=np)
    power = np.mean([p.level[:, [11, 23]] for p in ctx.power], axis=0)
    np.testing.assert_allclose(states.power_usd_mwh, power, rtol=1e-15)


def still_index(scenario):
    """The scenario with an AI rent index that does not move: states split on hashprice."""
    ai = scenario.market.ai.model_copy(update={"rent_volatility": 0.0})
    return scenario.model_copy(update={"market": scenario.market.model_copy(update={"ai": ai})})


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_bins_split_each_state_evenly_inside_its_parent(texas, k):
    portfolio = kernel_inputs(still_index(texas))
    states = market_states(portfolio)
    assert not states.ai_moves
    tree = state_tree(states, k)
    assert tree.nodes == 1 + k + k * k and len(tree.leaves) == k * k
    for j in (1, 2):
        nodes = np.flatnonzero(tree.stage == j)
        assert tree.probability[nodes].sum() == pytest.approx(1.0)
        for v in nodes:  # equal counts inside the parent, to one scenario of rounding
            share = tree.count[tree.parent[v]] / k
            assert abs(tree.count[v] - share) <= 1
    # a scenario's state at each year holds its hashprice then, inside its parent's state
    at = {2: tree.leaves[tree.leaf]}
    at[1] = tree.parent[at[2]]
    for j in (1, 2):
        hp = states.hashprice[:, j - 1]
        assert np.all((hp >= tree.low[at[j]]) & (hp < tree.high[at[j]]))
    assert np.all(tree.parent[at[1]] == 0)
    np.testing.assert_array_equal(tree.assign(states), tree.leaf)


def test_states_split_on_the_ai_rent_index_within_each_hashprice_bin(texas):
    """Where the index moves, 4 clusters are 2 hashprice bins x 2 index bins, each index
    bin half of its hashprice bin, and a scenario's state holds both of its values."""
    states = market_states(kernel_inputs(texas))
    assert states.ai_moves
    tree = state_tree(states, 4)
    assert tree.splits_ai and tree.nodes == 1 + 4 + 16
    at = {2: tree.leaves[tree.leaf]}
    at[1] = tree.parent[at[2]]
    for j in (1, 2):
        hp, ai = states.hashprice[:, j - 1], states.ai_rent_index[:, j - 1]
        assert np.all((hp >= tree.low[at[j]]) & (hp < tree.high[at[j]]))
        assert np.all((ai >= tree.ai_low[at[j]]) & (ai < tree.ai_high[at[j]]))
        for v in np.flatnonzero(tree.stage == j):
            siblings = [u for u in tree.children(tree.parent[v]) if tree.low[u] == tree.low[v]]
            assert len(siblings) == 2
            both = sum(tree.count[u] for u in siblings)
            assert abs(tree.count[v] - both / 2) <= 1
    np.testing.assert_array_equal(tree.assign(states), tree.leaf)
    assert "AI rent index" in tree.describe(int(tree.leaves[0]))
    assert not state_tree(states, 3).splits_ai  # fewer than 4: hashprice alone


def test_a_state_depends_only_on_what_was_seen_by_then(texas):
    """Changing the market after a year leaves every state at that year as it was."""
    portfolio = kernel_inputs(texas)
    states = market_states(portfolio)
    tree = state_tree(states, 4)  # hashprice and the AI rent index
    order = np.random.default_rng(0).permutation(states.scenarios)
    shuffled = type(states)(
        states.years,
        states.months,
        np.column_stack([states.hashprice[:, 0], states.hashprice[order, 1]]),
        states.btc_usd,
        states.hashrate_eh,
        states.power_usd_mwh,
        np.column_stack([states.ai_rent_index[:, 0], states.ai_rent_index[order, 1]]),
        states.ai_moves,
    )
    first = tree.parent[tree.leaves[tree.assign(shuffled)]]
    np.testing.assert_array_equal(first, tree.parent[tree.leaves[tree.leaf]])


def test_one_decision_year_has_one_state(hydro):
    one = hydro.model_copy(
        update={"build": hydro.build.model_copy(update={"decision_years": [2027]})}
    )
    portfolio = kernel_inputs(one)
    tree = state_tree(market_states(portfolio), 4)
    assert tree.nodes == 1 and tree.leaves.tolist() == [0] and set(tree.leaf) == {0}


def test_grouped_means_are_the_same_for_any_chunking_and_add_up_to_the_means(texas):
    grouping = staged_states(texas, 4).grouping
    whole = value_options(texas, backend="numpy", grouping=grouping)
    blocks = value_options(texas, backend="numpy", grouping=grouping, chunk_size=BLOCK)
    got = blocks.kernel.group_npv_usd
    np.testing.assert_array_equal(got, whole.kernel.group_npv_usd)
    npv = np.hstack([p.npv_usd for p in whole.kernel.parts])
    np.testing.assert_array_equal(got, group_means(npv, grouping.labels, grouping.groups))
    share = np.bincount(grouping.labels) / N
    mean = whole.options.table["expected_npv_usd"].to_numpy()
    np.testing.assert_allclose(share @ got, mean, rtol=1e-12, atol=1e-3)


def test_grouped_means_of_the_monthly_reference_equal_the_fast_path(hydro):
    """The twin that builds every line item month by month, grouped by the same
    reduction, gives the fast path's conditional means."""
    grouping = staged_states(hydro, 2).grouping
    fast = value_options(hydro, backend="numpy", grouping=grouping)
    portfolio = kernel_inputs(hydro)
    ctx = chunk_market(portfolio, np.arange(N, dtype=np.int64), xp=np)
    options = [o for opts in fast.site_options for o in opts]
    reference = np.column_stack([option_npv(portfolio, o, ctx, xp=np) for o in options])
    want = group_means(reference, grouping.labels, grouping.groups)
    got = fast.kernel.group_npv_usd
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * scale)


def test_a_cached_site_is_reused_only_with_the_same_states(texas):
    cache = ValuationCache()
    a = staged_states(texas, 2).grouping
    b = staged_states(texas, 3).grouping
    value_options(texas, backend="numpy", grouping=a, cache=cache)
    value_options(texas, backend="numpy", grouping=a, cache=cache)
    hits = cache.hits
    again = value_options(texas, backend="numpy", grouping=b, cache=cache)
    assert cache.hits == hits  # another partition: every site valued again
    assert again.kernel.group_npv_usd.shape[0] == 9


def test_group_means_of_an_empty_group_are_nan():
    values = np.arange(6.0).reshape(3, 2)
    got = group_means(values, np.array([0, 0, 2]), 3)
    np.testing.assert_array_equal(got[0], [1.0, 2.0])
    assert np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[2], [4.0, 5.0])
    assert Grouping(np.zeros(3, dtype=np.int64), 1, "k").groups == 1


def test_ties_at_the_minimum_still_split_off():
    from siteopt.kernels.states import _quantile_edges

    assert _quantile_edges(np.array([1.0, 1.0, 1.0, 1.0, 2.0]), 4) == [2.0]
    assert _quantile_edges(np.array([3.0, 3.0, 3.0]), 4) == []
    assert _quantile_edges(np.arange(8.0), 4) == [2.0, 4.0, 6.0]
