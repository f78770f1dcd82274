"""AI cloud contracts (docs/model.md, AI cloud): the miner buys and runs the GPUs.

A colocation tenant rents the hall and brings its own GPUs. A cloud customer buys GPU
capacity: the contract's ``price_usd_kw_month`` is revenue per kW IT-month, and the
landlord buys the GPUs, pays the power and runs the service. On top of the hall's own
flows (:mod:`.hosting`, the contract's revenue in the rent's place) a cloud contract has,
per IT MW:

* the GPUs, ``gpu_capex_usd_mw``, bought in the month of first revenue (ASICs' tax class:
  both are five-year computer equipment), and sold when the contract ends (its term, or
  the customer's exit) at ``gpu_residual_curve`` of their cost at that age, the proceeds
  taxed in full;
* operations (``operations_usd_mw_month`` at the prices of each month) while it runs;
* a prepayment of ``prepayment_share`` of the first term's scheduled revenue,
  ``prepayment_months`` after signing (construction start), at first revenue at the
  latest (a customer prepays before its first bill), and in the horizon's last month at
  the latest; taxed when received and credited against each month's bill: the customer
  pays (1 - share) of the revenue, and keeps nothing back if it exits early;
* a GPU loan of ``gpu_loan_to_cost`` of their cost, drawn when they are bought, repaid in
  level monthly payments (the first at once, as the halls' debt) over the term and at once
  when the contract ends early (:class:`GpuLoan`); valued, as the halls' debt, at the
  contract's debt's market rate with the tax its interest saves;
* a delivery milestone: where first revenue comes more than ``milestone_months`` after
  plan, the customer terminates at delivery with ``milestone_termination_prob`` (the third
  uniform of its exit draw): no revenue, no GPUs, the prepayment refunded then, and the
  hall re-let as colocation (:func:`.hosting.tenancy` reads it as an exit at month 0).

After the contract the hall is leased as colocation: a renewal or a successor pays
``successor_price_usd_kw_month`` times the market factor (:func:`renewal_base`). A buyer
at T who takes over a running cloud contract takes over its remaining revenue, credits and
operations and the GPUs' sale at its end (:func:`tail_value`).

The fast path reads everything from prefix tables and gathers (:func:`cloud_pv`,
:func:`tail_value`); the month-by-month reference (:func:`monthly_lines`,
:func:`tail_value_monthly`) builds the same flows one month at a time, and the tests hold
them equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .debt import Loan, annuity_due, monthly
from .params import ContractParams, Portfolio
from .prefix import gather, geometric, prefix
from .rng import STREAM_EXIT, entity_stream, uniforms4

CLOUD = "cloud"


def is_cloud(contract: ContractParams) -> bool:
    """The miner runs the GPUs (``kind: cloud``)."""
    return contract.kind == CLOUD


def renewal_base(contract: ContractParams, own: np.ndarray, successor: np.ndarray) -> np.ndarray:
    """The base a renewing first tenant's market rent follows: its own escalated price, or
    for a cloud customer (which then leases the hall as colocation) the successor's."""
    return successor if is_cloud(contract) else own


def residual_share(contract: ContractParams, age_months: Any, xp: ModuleType) -> Any:
    """Resale value of GPUs ``age_months`` old as a share of their cost: 1 when new, the
    curve's share at the end of each year of age, linear within a year, the last share
    after."""
    curve = (1.0, *contract.gpu_residual_curve)
    ages = xp.asarray(12.0 * np.arange(len(curve)))
    age = xp.asarray(age_months).astype(xp.float64)
    return xp.interp(age, ages, xp.asarray(curve, dtype=np.float64))


def milestone_terminated(
    scenario: Portfolio,
    site_index: int,
    contract_index: int,
    delay_months: Any,
    scenarios: Any,
    *,
    xp: ModuleType,
) -> Any:
    """Per scenario, the customer terminates at a late delivery (bool (N,))."""
    c = scenario.contracts[contract_index]
    if not is_cloud(c) or c.milestone_months is None or c.milestone_termination_prob <= 0:
        return xp.zeros(delay_months.shape, dtype=bool)
    entity = site_index * max(1, len(scenario.contracts)) + contract_index
    u = uniforms4(
        scenario.simulation.seed, scenarios, 0, entity_stream(STREAM_EXIT, entity), xp=xp
    )[2]
    return (delay_months > c.milestone_months) & (u < c.milestone_termination_prob)


def prepayment_usd_mw(contract: ContractParams, sched: Any) -> float:
    """The prepayment per IT MW before the index at signing: the share of the first term's
    scheduled revenue (``sched``: the :class:`.hosting.RentSchedule`) [USD/MW]."""
    return contract.prepayment_share * sched.term_revenue


def prepayment_month(
    contract: ContractParams, construction: int, start: Any, months: int, xp: ModuleType
) -> Any:
    """Calendar month the prepayment arrives: ``prepayment_months`` after signing, at
    first revenue (``start``: per scenario, or as planned) at the latest, and in the
    horizon's last month at the latest."""
    return xp.minimum(start, min(construction + contract.prepayment_months, months - 1))


def gpu_cost_per_month(contract: ContractParams) -> float:
    """The GPUs' cost net of their sale at the term's end, spread over the term
    [USD/MW IT-month] (0 for colocation)."""
    if not is_cloud(contract):
        return 0.0
    term = max(1, int(round(12 * contract.term_years)))
    sale = float(residual_share(contract, term, np))
    return contract.gpu_capex_usd_mw * (1.0 - sale) / term


def cloud_cost_per_month(
    contract: ContractParams, prices: float, revenue: float, gpu_payment: float = 0.0
) -> float:
    """What a lender sizing the hall's debt on a cloud contract's ``revenue`` (a month's, as
    scheduled) counts against it beside the hall's own costs, per IT MW-month: the
    prepayment's credit (revenue not paid in cash then), operations at ``prices`` (the
    cost index then), the GPU loan's ``gpu_payment``, and the GPUs' cost the loan does not
    fund, net of their sale at the term's end, spread over the term [USD/MW-month]."""
    term = max(1, int(round(12 * contract.term_years)))
    sale = float(residual_share(contract, term, np))
    unfunded = 1.0 - contract.gpu_loan_to_cost
    gpus = (contract.gpu_capex_usd_mw or 0.0) * max(unfunded - sale, 0.0) / term
    credit = contract.prepayment_share * revenue
    return credit + contract.operations_usd_mw_month * prices + gpu_payment + gpus


@dataclass(frozen=True)
class GpuLoan:
    """The loan against a cloud contract's GPUs, per IT MW.

    ``drawn`` when the GPUs are bought [USD/MW]; ``months`` level payments at
    ``monthly_rate``, the first in the month it is drawn; discounted at ``market_rate``
    [1/yr]. The balance just before payment k is ``payment * annuity_due(r, months - k)``;
    payment k >= 1 holds interest ``balance_k * r / (1 + r)``.
    """

    drawn: float
    monthly_rate: float
    months: int
    market_rate: float

    @classmethod
    def of(cls, scenario: Portfolio, contract: ContractParams) -> GpuLoan | None:
        """The contract's GPU loan; None without one (or for colocation)."""
        if not is_cloud(contract) or contract.gpu_loan_to_cost <= 0:
            return None
        hall = Loan.of(scenario, contract)
        rate = hall.rate if contract.gpu_debt_rate is None else contract.gpu_debt_rate
        return cls(
            drawn=contract.gpu_loan_to_cost * contract.gpu_capex_usd_mw,
            monthly_rate=monthly(rate),
            months=max(1, int(round(12 * contract.term_years))),
            market_rate=hall.market_rate,
        )

    @property
    def payment(self) -> float:
        return self.drawn / float(annuity_due(self.monthly_rate, self.months))

    def balance(self, k: Any, xp: ModuleType) -> Any:
        """Owed just before relative payment month ``k`` (0 from ``months`` on)."""
        left = xp.maximum(self.months - k, 0)
        return self.payment * annuity_due(self.monthly_rate, left)

    def last(self, c_end: Any, xp: ModuleType) -> Any:
        """Relative month of the last payment: the contract's end when it comes first
        (the balance repaid then), else the term's last month."""
        return xp.where(c_end < self.months, c_end, self.months - 1)


# ---- the fast path ----------------------------------------------------------------------


def gpu_loan_pv(
    scenario: Portfolio, contract: ContractParams, ten: Any, cal: Any, tax_rate: float, *,
    xp: ModuleType,
) -> tuple[Any, Any]:  # fmt: skip
    """What the GPU loan adds per IT MW (N,): its flows at the market rate (the draw less
    the payments and the balance owed at T) and the tax its interest saves; and the PV of
    that balance (inside the first). (0.0, 0.0) without one."""
    loan = GpuLoan.of(scenario, contract)
    if loan is None:
        return 0.0, 0.0
    months, r = cal.months, loan.monthly_rate
    dm = (1.0 + loan.market_rate) ** (-1.0 / 12.0)
    start, c_end, horizon = ten.start, ten.contract_months, ten.rent_months
    bought = (c_end > 0) & (start < months)
    d_start = dm ** start.astype(xp.float64)
    n = loan.months
    last = loan.last(c_end, xp)
    regular = xp.minimum(xp.minimum(c_end, n), horizon)
    service = loan.payment * geometric(dm, xp.maximum(regular, 0), xp)
    payoff = xp.where((c_end < n) & (c_end < horizon), loan.balance(c_end, xp) * dm**c_end, 0.0)
    outstanding = horizon <= last
    owed = xp.where(outstanding, loan.balance(horizon, xp), 0.0) * dm**months
    # payments 1..q hold interest A (1 - (1 + r)^(k - n)): sum_{k=1}^{q} x^k = x geometric(x, q)
    q = xp.maximum(xp.minimum(last, horizon - 1), 0)
    grown = dm * (1.0 + r)
    interest = loan.payment * (
        dm * geometric(dm, q, xp) - (1.0 + r) ** (-n) * grown * geometric(grown, q, xp)
    )
    value = d_start * (loan.drawn - service - payoff + tax_rate * interest) - owed
    return xp.where(bought, value, 0.0), xp.where(bought, owed, 0.0)


def cloud_pv(
    scenario: Portfolio,
    contract: ContractParams,
    ten: Any,
    cal: Any,
    tw: Any,
    *,
    xp: ModuleType,
) -> Any:
    """PV per IT MW, after tax, of a cloud contract's own flows inside the horizon: the
    prepayment (and its refund), the credits against the revenue, operations, the GPUs and
    their sale (N,); 0 for colocation. ``ten``: the hall's :class:`.hosting.Tenancy`."""
    if not is_cloud(contract):
        return 0.0
    months = cal.months
    d = xp.asarray(cal.discount)
    start, c_end, k_end = ten.start, ten.contract_months, ten.rent_months
    sched = ten.schedule
    # the revenue the credits take their share of: as the hall reads the contract rent
    rent_c = sched.prefixes(cal.discount[:-1], xp)[0]
    df_start = (1.0 + scenario.discount_rate) ** (-start.astype(xp.float64) / 12.0)
    revenue = df_start * ten.signed * gather(rent_c, xp.clip(c_end, 0, k_end), xp=xp)
    credits = contract.prepayment_share * revenue
    paid = prepayment_usd_mw(contract, sched) * ten.signed
    arrives = prepayment_month(contract, ten.construction, start, months, xp)
    received = paid * gather(d, xp.minimum(arrives, months - 1), xp=xp)
    late = ten.terminated & (start < months)
    at_start = xp.minimum(start, months - 1)
    refund = xp.where(late, paid * gather(d, at_start, xp=xp), 0.0)
    table = xp.asarray(prefix(cal.discount[:-1] * cal.cost[:-1], xp=np))
    ops = contract.operations_usd_mw_month * (
        gather(table, ten.contract_end, xp=xp) - gather(table, ten.rent_start, xp=xp)
    )
    gpu = contract.gpu_capex_usd_mw
    bought = (c_end > 0) & (start < months)
    asic = xp.asarray(tw.capex("asic", cal.discount))
    purchase = xp.where(bought, gpu * gather(asic, at_start, xp=xp), 0.0)
    end = start + c_end
    sold = (c_end > 0) & (end < months)
    sale = gpu * residual_share(contract, c_end, xp) * gather(d, xp.minimum(end, months), xp=xp)
    sale = xp.where(sold, sale, 0.0)
    return tw.after_tax * (received - refund - credits - ops + sale) - purchase


def tail_value(
    contract: ContractParams, ten: Any, terms: Any, months: int, *, xp: ModuleType
) -> Any:
    """Value at T, pre-tax, per IT MW, of a cloud contract's flows a buyer at T takes over
    with the lease running then (read where ``tail_kind`` is the contract): the credits
    and operations to its term's end and the GPUs' sale then at the lease's rate, less
    the GPUs still to buy where first revenue comes after T (0 for colocation). ``terms``:
    the :class:`.exit_value.ExitTerms`."""
    if not is_cloud(contract):
        return 0.0
    sched = ten.schedule
    u, g = terms.lease_month, terms.price_month
    k, start = ten.rent_months, ten.start
    end = xp.maximum(ten.tail_end, k)
    left = (end - k).astype(xp.float64)
    tables = sched.prefixes(u ** np.arange(len(sched.contract_rent), dtype=np.float64), xp)[0]
    part = gather(tables, end, xp=xp) - gather(tables, k, xp=xp)
    revenue = ten.signed * part / u ** k.astype(xp.float64)
    prices = g ** (start + k).astype(xp.float64)
    ops = contract.operations_usd_mw_month * prices * geometric(g * u, left, xp)
    gpu = contract.gpu_capex_usd_mw
    sale = gpu * residual_share(contract, end, xp) * u**left
    buy = xp.where(start >= months, gpu, 0.0)
    offset = (start + k - months).astype(xp.float64)
    return u**offset * (sale - contract.prepayment_share * revenue - ops - buy)


# ---- the month-by-month reference ------------------------------------------------------


def gpu_loan_monthly(
    scenario: Portfolio, contract: ContractParams, ten: Any, months: int, it_mw: float, *,
    xp: ModuleType,
) -> tuple[Any, Any, Any, Any] | None:  # fmt: skip
    """The GPU loan month by month for ``it_mw``: draw, service and interest (N, T) and the
    balance owed at T (N,) [USD]; None without one."""
    loan = GpuLoan.of(scenario, contract)
    if loan is None:
        return None
    t = xp.arange(months)[None, :]
    start, c_end = ten.start[:, None], ten.contract_months[:, None]
    k = t - start
    bought = (c_end > 0) & (start < months)
    last = loan.last(c_end, xp)
    due = bought & (k >= 0) & (k <= last)
    balance = loan.balance(xp.clip(k, 0, loan.months), xp)
    early = (c_end < loan.months) & (k == c_end)
    service = xp.where(due, xp.where(early, balance, loan.payment), 0.0)
    r = loan.monthly_rate
    interest = xp.where(due & (k >= 1), balance * r / (1.0 + r), 0.0)
    draw = xp.where(bought & (k == 0), loan.drawn, 0.0)
    at_end = months - ten.start
    owed = xp.where(
        bought[:, 0] & (at_end <= last[:, 0]), loan.balance(xp.clip(at_end, 0, loan.months), xp),
        0.0,
    )  # fmt: skip
    return it_mw * draw, it_mw * service, it_mw * interest, it_mw * owed


# the reference's cloud lines: taxable (the prepayment and its credits and refund, the
# operations, the GPUs' sale) and the GPUs bought (capex of the ASICs' class)
CLOUD_LINES = ("cloud_prepayment", "cloud_operations", "gpu_residual", "gpu_capex")


def monthly_lines(
    contract: ContractParams, ten: Any, cal: Any, it_mw: float, *, xp: ModuleType
) -> dict[str, Any]:
    """A cloud contract's CLOUD_LINES month by month (N, T) [USD/month] for ``it_mw``; {}
    for colocation."""
    if not is_cloud(contract):
        return {}
    months = cal.months
    n = ten.start.shape[0]
    t = xp.arange(months)[None, :]
    start = ten.start[:, None]
    c_end = ten.contract_months[:, None]
    s = t - start
    on = (s >= 0) & (s < c_end)
    sched = ten.schedule
    rent = xp.asarray(sched.contract_rent)[xp.clip(s, 0, len(sched.contract_rent) - 1)]
    signed = ten.signed[:, None]
    paid = prepayment_usd_mw(contract, sched) * signed
    arrives = prepayment_month(contract, ten.construction, ten.start, months, xp)
    prepay = xp.where(t == arrives[:, None], paid, 0.0)
    prepay = prepay - contract.prepayment_share * signed * rent * on
    refund = ten.terminated[:, None] & (t == start)
    prepay = prepay - xp.where(refund, paid, 0.0)
    ops = -contract.operations_usd_mw_month * xp.asarray(cal.cost[:-1])[None, :] * on
    gpu = contract.gpu_capex_usd_mw
    runs = c_end > 0
    buy = -gpu * (runs & (t == start))
    share = residual_share(contract, ten.contract_months, xp)[:, None]
    sale = gpu * share * (runs & (t == start + c_end))
    lines = {
        "cloud_prepayment": prepay,
        "cloud_operations": ops,
        "gpu_residual": sale,
        "gpu_capex": buy + xp.zeros((n, months)),
    }
    return {name: it_mw * line for name, line in lines.items()}


def tail_value_monthly(
    contract: ContractParams, ten: Any, terms: Any, months: int, *, xp: ModuleType
) -> Any:
    """:func:`tail_value`, its months summed one at a time."""
    if not is_cloud(contract):
        return 0.0
    sched = ten.schedule
    u, g = terms.lease_month, terms.price_month
    k, start = ten.rent_months, ten.start
    end = xp.maximum(ten.tail_end, k)
    span = int(xp.max(end - k)) if end.size else 0
    j = xp.arange(max(span, 1))[None, :]
    rel = k[:, None] + j
    inside = j < (end - k)[:, None]
    length = len(sched.contract_rent)
    rent = ten.signed[:, None] * xp.asarray(sched.contract_rent)[xp.minimum(rel, length - 1)]
    at = (start[:, None] + rel).astype(xp.float64)  # calendar month
    cost = contract.operations_usd_mw_month * g**at
    flows = -(contract.prepayment_share * rent + cost)
    value = (inside * flows * u ** (at - months)).sum(axis=1)
    gpu = contract.gpu_capex_usd_mw
    sold_at = (start + end - months).astype(xp.float64)
    value = value + gpu * residual_share(contract, end, xp) * u**sold_at
    first = (start - months).astype(xp.float64)
    return value - xp.where(start >= months, gpu * u**first, 0.0)


def planned_flows_usd(
    scenario: Portfolio,
    contract: ContractParams,
    construction: int,
    first_revenue: int,
    it_mw: float,
    term_revenue_usd_mw: float,
) -> np.ndarray:
    """The equity a cloud contract needs by calendar month as planned (no delay, the
    index at 1): the GPUs at first revenue less their loan, less the prepayment when it
    arrives [USD] (T,); zeros for colocation. The plan's capital budgets read it.
    ``term_revenue_usd_mw``: the first term's scheduled revenue per IT MW
    (:func:`.hosting.term_revenue_usd_mw`)."""
    months = scenario.months
    out = np.zeros(months)
    if not is_cloud(contract):
        return out
    if first_revenue < months:
        out[first_revenue] += it_mw * contract.gpu_capex_usd_mw * (1.0 - contract.gpu_loan_to_cost)
    paid = it_mw * contract.prepayment_share * term_revenue_usd_mw
    out[int(prepayment_month(contract, construction, first_revenue, months, np))] -= paid
    return out
