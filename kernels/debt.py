"""Project debt of a hall (docs/model.md, Debt): its terms, and its draws, interest,
service and balance in closed form for the fast path.

The loan draws with the capex and capitalises its interest until the first rent.
Payments are made at the start of each month from the first rent: interest only while
the rent ramps up (and for ``interest_only_months``), then a level annuity-due that repays
the balance by the end of the term; a bullet pays interest only until the term's last
month, which repays the balance. A bullet that falls due inside the horizon is refinanced
(``refinance``) up to what the hall's trailing NOI carries at ``refinance_dscr``: the new
loan is drawn in that month and amortises as an annuity-due from the next, and the equity
repays only the rest.

Relative months k count from the first rent; calendar months t from the horizon start.
Amounts are per USD drawn: the fast path multiplies them by the loan of an option
(siteopt.kernels.hosting.loan_per_capex). The month-by-month reference
(siteopt.kernels.cashflows) simulates the same loan and must equal these closed forms.

Under adjusted present value the loan's flows are discounted at ``market_rate`` (the rate
the market lends this borrower at; by default the loan's own), so a loan at its market
rate is worth nothing before taxes; the interest it deducts is worth the tax rate times
the interest, at the same discount.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .params import ContractParams, Portfolio
from .prefix import prefix


def annuity_due(rate: float, n: Any) -> Any:
    """Value at the first payment of ``n`` monthly payments of 1, the first paid at once.

    sum_{i < n} (1 + rate)^-i. Debt amortises from the first rent month: payment
    A = balance / annuity_due(rate, term), and the balance owed just before payment k
    is A * annuity_due(rate, term - k).
    """
    if rate == 0:
        return n * 1.0
    if isinstance(n, np.ndarray) or np.isscalar(n):
        # 1 - (1 + rate)^-n as -expm1(-n log1p(rate)): no cancellation at tiny rates
        left = -np.expm1(-n * 1.0 * np.log1p(rate))
    else:  # a device array, by its own operators
        left = 1.0 - (1.0 + rate) ** (-n * 1.0)
    return left * (1.0 + rate) / rate


def monthly(rate: float) -> float:
    """The monthly rate equivalent to an annual one."""
    return (1.0 + rate) ** (1.0 / 12.0) - 1.0


@dataclass(frozen=True)
class Loan:
    """The debt terms of the halls one contract leases (resolved over the portfolio's).

    ``landlord_share`` is 1 - the tenant-funded share: the loan is at most ``loan_to_cost``
    of the landlord's capex. ``interest_only_months`` is in effect: a bullet's term less
    its last month, else the larger of the key and the rent ramp, within the term.
    """

    landlord_share: float
    loan_to_cost: float
    monthly_rate: float
    term_months: int
    interest_only_months: int
    non_recourse: bool
    market_rate: float  # annual: the loan's flows are discounted at it
    rate: float  # annual
    target_dscr: float | None
    bullet: bool
    refinance: bool  # a bullet refinanced when due
    refinance_monthly_rate: float
    refinance_months: int
    refinance_dscr: float

    @classmethod
    def of(cls, scenario: Portfolio, contract: ContractParams) -> Loan:
        debt = contract.financing or scenario.financing.debt
        term = max(1, int(round(12 * debt.term_years)))
        bullet = debt.amortization == "bullet"
        ramp = sum(phase.months for phase in contract.ramp)
        io = term - 1 if bullet else min(max(debt.interest_only_months, ramp), term - 1)
        rate = debt.rate
        return cls(
            landlord_share=1.0 - contract.tenant_funded_share,
            loan_to_cost=debt.loan_to_cost,
            monthly_rate=monthly(rate),
            term_months=term,
            interest_only_months=io,
            non_recourse=debt.non_recourse,
            market_rate=rate if debt.market_rate is None else debt.market_rate,
            rate=rate,
            target_dscr=debt.target_dscr,
            bullet=bullet,
            refinance=bullet and debt.refinance,
            refinance_monthly_rate=monthly(
                rate if debt.refinance_rate is None else debt.refinance_rate
            ),
            refinance_months=max(1, int(round(12 * debt.refinance_term_years))),
            refinance_dscr=debt.refinance_dscr,
        )

    @property
    def borrows(self) -> bool:
        return self.loan_to_cost > 0 and self.landlord_share > 0

    @property
    def due_month(self) -> int:
        """Relative month the term's last payment falls in (a bullet's balance)."""
        return self.term_months - 1

    # ------------------------------------------------------------------ the schedule

    def growth(self, spend: np.ndarray, start: Any, xp: ModuleType) -> Any:
        """Balance at the first rent (calendar ``start``) per USD drawn with the capex
        spend ``spend`` (shares by calendar month): each draw grows at the loan's rate."""
        g = 1.0 + self.monthly_rate
        weight = float(np.sum(spend * g ** (-np.arange(len(spend), dtype=np.float64))))
        return weight * g ** xp.asarray(start).astype(xp.float64)

    def payments(self, balance: Any) -> tuple[Any, Any]:
        """The level payment and the interest-only payment on ``balance`` at the first rent."""
        r = self.monthly_rate
        level = balance / annuity_due(r, self.term_months - self.interest_only_months)
        return level, balance * (r / (1.0 + r))  # paid at a month's start: the balance holds

    def balance_before(self, balance: Any, k: Any, xp: ModuleType) -> Any:
        """Balance owed just before relative month ``k``'s payment (0 from the term on)."""
        k = xp.minimum(k, self.term_months)
        level, _ = self.payments(balance)
        rest = level * annuity_due(self.monthly_rate, self.term_months - k)
        return xp.where(k <= self.interest_only_months, balance, rest)

    def refinancing_payment(self, drawn: Any) -> Any:
        """Level payment of a refinancing of ``drawn``, drawn in the due month and paid
        from the month after."""
        r = self.refinance_monthly_rate
        return drawn * (1.0 + r) / annuity_due(r, self.refinance_months)

    def refinancing_capacity(self, noi_usd_month: Any, xp: ModuleType) -> Any:
        """The refinancing a monthly NOI carries at ``refinance_dscr`` [USD]."""
        r = self.refinance_monthly_rate
        carried = xp.maximum(noi_usd_month, 0.0) / self.refinance_dscr
        return carried * annuity_due(r, self.refinance_months) / (1.0 + r)

    def sized_balance(self, noi_usd_month: float) -> float:
        """The balance at the first rent a stabilised monthly NOI carries at
        ``target_dscr`` on the amortising payment (a bullet's: the interest) [USD]."""
        service = max(noi_usd_month, 0.0) / self.target_dscr
        r = self.monthly_rate
        if self.bullet:
            return service * (1.0 + r) / r if r > 0 else float("inf")
        return service * annuity_due(r, self.term_months - self.interest_only_months)


@dataclass(frozen=True)
class LoanTables:
    """Prefix sums over months of the market discount factors the closed forms read
    (backend arrays, length ``months`` + 1).

    ``w[k]`` = sum_{j < k} v^j, v the monthly market discount; ``x[k]`` = sum_{j < k}
    v^j (1 + i)^j; ``x_refi`` the same at the refinancing rate.
    """

    v: float
    w: Any
    x: Any
    x_refi: Any


def loan_tables(loan: Loan, months: int, xp: ModuleType, rate: float | None = None) -> LoanTables:
    """LoanTables for ``months`` at the market rate (or at ``rate``)."""
    v = (1.0 + (loan.market_rate if rate is None else rate)) ** (-1.0 / 12.0)
    k = np.arange(months, dtype=np.float64)
    disc = v**k
    return LoanTables(
        v=v,
        w=xp.asarray(prefix(disc, xp=np)),
        x=xp.asarray(prefix(disc * (1.0 + loan.monthly_rate) ** k, xp=np)),
        x_refi=xp.asarray(prefix(disc * (1.0 + loan.refinance_monthly_rate) ** k, xp=np)),
    )


def service_pv(loan: Loan, balance: Any, a: Any, b: Any, tab: LoanTables, xp: ModuleType) -> Any:
    """PV at the first rent of the payments due in relative months [a, b) (within the
    term) of a loan with ``balance`` at the first rent."""
    io, term = loan.interest_only_months, loan.term_months
    level, interest = loan.payments(balance)
    a, b = xp.minimum(a, term), xp.minimum(xp.maximum(a, b), term)
    pv = interest * (tab.w[xp.minimum(b, io)] - tab.w[xp.minimum(a, io)])
    return pv + level * (tab.w[b] - tab.w[xp.minimum(xp.maximum(a, io), b)])


def interest_pv(loan: Loan, balance: Any, a: Any, b: Any, tab: LoanTables, xp: ModuleType) -> Any:
    """PV at the first rent of the interest in the payments of relative months [a, b).

    An interest-only payment is all interest; the j-th level payment of n pays
    level x (1 - (1 + i)^-(n - j - 1)) of interest (paid in advance, the last pays none).
    """
    io, term = loan.interest_only_months, loan.term_months
    level, interest = loan.payments(balance)
    a, b = xp.minimum(a, term), xp.minimum(xp.maximum(a, b), term)
    pv = interest * (tab.w[xp.minimum(b, io)] - tab.w[xp.minimum(a, io)])
    lo = xp.minimum(xp.maximum(a, io), b)
    n, g = term - io, 1.0 + loan.monthly_rate
    tail = g ** (-(n - 1.0)) * g ** (-float(io))
    return pv + level * ((tab.w[b] - tab.w[lo]) - tail * (tab.x[b] - tab.x[lo]))


def construction_interest_pv(
    loan: Loan, spend: np.ndarray, start: Any, months: int, rate: float, xp: ModuleType
) -> Any:
    """PV at month 0, discounted at the annual ``rate``, of the interest capitalised per USD
    drawn until the first rent (calendar ``start``) or the horizon, whichever is first.

    A draw in month u accrues i x its balance in each month u .. start - 1; the sum over
    draws is i x sum_u spend_u (1 + i)^-u (q[end] - q[u]), q[t] = sum_{u < t} v^u (1 + i)^u.
    """
    q = loan_tables(loan, months + 1, np, rate).x
    g = 1.0 + loan.monthly_rate
    u = np.arange(len(spend), dtype=np.int64)
    inside = u < months
    weights = spend[inside] * g ** (-u[inside].astype(np.float64))
    a1 = float(weights.sum())
    a2 = float(weights @ q[u[inside]])
    end = xp.minimum(xp.asarray(start), months)
    return loan.monthly_rate * xp.maximum(xp.asarray(q)[end] * a1 - a2, 0.0)


def refinancing_pv(
    loan: Loan,
    drawn: Any,
    k_end: Any,
    tab: LoanTables,
    xp: ModuleType,
) -> tuple[Any, Any, Any]:
    """A refinancing of ``drawn`` (per scenario) in the due month k0, seen from the first
    rent: (PV of its draw less its payments before ``k_end``, PV of its interest before
    ``k_end``, its balance owed just before ``k_end``). Zero where k0 >= ``k_end``."""
    k0 = loan.due_month
    zero = xp.zeros_like(drawn * 1.0)
    if k0 + 1 >= len(tab.w):  # falls due after every horizon month: nothing to refinance
        return zero, zero, zero
    on = k_end > k0
    r, n = loan.refinance_monthly_rate, loan.refinance_months
    level = loan.refinancing_payment(drawn)
    a = k0 + 1
    b = xp.clip(k_end, a, a + n)
    paid = level * (tab.w[b] - tab.w[a])
    draw = drawn * (tab.w[k0 + 1] - tab.w[k0])
    g = 1.0 + r
    tail = g ** (-(n - 1.0)) * g ** (-float(a))
    interest = r * draw + level * ((tab.w[b] - tab.w[a]) - tail * (tab.x_refi[b] - tab.x_refi[a]))
    j = xp.maximum(k_end - a, 0)
    owed = xp.where(j < n, level * annuity_due(r, n - j), 0.0)
    return (
        xp.where(on, draw - paid, zero),
        xp.where(on, interest, zero),
        xp.where(on, owed, zero),
    )
