"""Income and property taxes (docs/model.md, Taxes): depreciation schedules, what the
deductions of an asset are worth, property tax on assessed values, and losses carried
forward.

Conventions of revision 3:

* Income tax is paid as the income accrues (estimated payments), at the federal rate plus
  the state rate net of its federal deduction (:attr:`TaxParams.income_rate`). With
  ``losses: offset`` a loss is used by the group at once, so a taxable flow is worth
  ``(1 - rate)`` of itself; with ``losses: carry_forward`` a project's losses are carried
  forward and used against at most 80% of a later year's taxable income
  (:func:`carried_forward`), the year's difference settled in its last month.
* Capex is depreciated from the month it is placed in service: the bonus share at once,
  the rest by the MACRS table of its class (half-year convention), the k-th year's
  deduction at the k-th anniversary. Buildings (a life over 20 years) get no bonus and
  are depreciated straight line.
* Every asset is taken as disposed of with the exit at the horizon: the tax basis left
  then is deducted in the horizon's last month, and the exit value is taxed in full.
* Property tax is a rate on the assessed value, the cost less straight-line depreciation
  over the class life, cut by the abatement share in the first abatement years after an
  asset is bought.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .params import Portfolio, TaxParams

NOL_USE_LIMIT = 0.8  # a carried loss offsets at most this share of a year's income (IRC 172)
BONUS_MAX_LIFE_YEARS = 20.0  # bonus depreciation: property with a recovery period <= 20 years


def macrs_fractions(life_years: float) -> np.ndarray:
    """Share of an asset's cost deducted in each tax year, half-year convention (IRS
    Publication 946, table A-1): 200% declining balance for lives up to 10 years, 150% for
    lives up to 20, straight line beyond; switching to straight line when it is larger.
    Length ``ceil(life) + 1``, summing to 1.

    5 years gives 20%, 32%, 19.2%, 11.52%, 11.52%, 5.76%.
    """
    life = float(life_years)
    factor = 2.0 if life <= 10 else 1.5 if life <= BONUS_MAX_LIFE_YEARS else 1.0
    years = int(np.ceil(life))
    out = np.zeros(years + 1)
    basis = 1.0
    remaining = life  # years of recovery left at the start of the year
    for k in range(years + 1):
        share = 0.5 if k == 0 else 1.0  # half a year in the first year
        declining = basis * factor / life * share
        straight = basis / remaining * share if remaining > 0 else basis
        take = min(basis, max(declining, straight))
        out[k] = take
        basis -= take
        remaining -= share
    out[-1] += basis  # rounding: the last year takes what is left
    return out


def deduction_fractions(life_years: float, bonus: float) -> np.ndarray:
    """Share of cost deducted at each anniversary of placing in service: the bonus share at
    once where the class is eligible (a life of at most 20 years), the rest by MACRS."""
    base = macrs_fractions(life_years)
    if life_years > BONUS_MAX_LIFE_YEARS or bonus <= 0:
        return base
    out = (1.0 - bonus) * base
    out[0] += bonus
    return out


def deduction_weights(fractions: np.ndarray, discount: np.ndarray, months: int) -> np.ndarray:
    """PV weight of the deductions of 1 USD placed in service in month p, for p = 0..T (a
    month at or past T: deducted whole in the last month).

    ``discount``: the discount factor of each month, length >= T; the deductions fall in
    the months :func:`deduction_months` gives.
    """
    d = discount[:months]
    return np.array([deduction_months(fractions, p, months) @ d for p in range(months + 1)])


def deduction_months(fractions: np.ndarray, p: int, months: int) -> np.ndarray:
    """The deductions of 1 USD placed in service in month ``p`` by month of the horizon: the
    k-th fraction in month p + 12 k when that is inside it, the basis left in its last
    month (all of it for p >= T); length T."""
    out = np.zeros(months)
    if months == 0:
        return out
    at = p + 12 * np.arange(len(fractions))
    inside = (at < months) & (at >= 0)
    np.add.at(out, at[inside], fractions[inside])
    out[months - 1] += 1.0 - float(fractions[inside].sum())
    return out


def year_edges(scenario: Portfolio) -> np.ndarray:
    """First month of each tax year (calendar years) and T: (Y + 1,) month indices."""
    first = int(scenario.start[5:]) - 1
    months = scenario.months
    inner = [12 * y - first for y in range(1, (first + months - 1) // 12 + 1)]
    return np.array([0, *inner, months], dtype=np.int64)


def assessed_share(age_months: Any, life_years: float, *, xp: ModuleType = np) -> Any:
    """Assessed value as a share of cost at an age: straight line to 0 over the life [-]."""
    return xp.clip(1.0 - age_months / (12.0 * life_years), 0.0, 1.0) * (age_months >= 0)


def property_rate_at(tax: TaxParams, age_months: Any, abated: Any, *, xp: ModuleType = np) -> Any:
    """Monthly property tax per USD of assessed value at an asset's age; ``abated``: the
    asset qualifies for the abatement (bought after the start) [1/month]."""
    cut = xp.where(
        abated & (age_months < 12.0 * tax.property_abatement_years),
        tax.property_abatement_share,
        0.0,
    )
    return tax.property_rate / 12.0 * (1.0 - cut)


def hall_property_share(tax: TaxParams, age_months: Any, *, xp: ModuleType = np) -> Any:
    """Monthly property tax per USD of the landlord's hall capex at a hall's age (its
    equipment and building each assessed over their class life; abated: a new hall)."""
    q = tax.ai_equipment_share
    assessed = q * assessed_share(age_months, tax.ai_equipment_life_years, xp=xp) + (
        1.0 - q
    ) * assessed_share(age_months, tax.building_life_years, xp=xp)
    return assessed * property_rate_at(tax, age_months, True, xp=xp)


@dataclass(frozen=True)
class TaxWeights:
    """What a USD is worth after income tax, by kind of flow (numpy, calendar months).

    Attributes
    ----------
    rate : float
        The income tax rate (federal and state) [-].
    after_tax : float
        1 - rate: the weight of a taxable flow (revenue, opex, power, property tax).
    asic, equipment, building : ndarray (T + 1,)
        PV at the unlevered rate of the deductions of 1 USD of each class placed in
        service in month p (:func:`deduction_weights`).
    """

    rate: float
    after_tax: float
    asic: np.ndarray
    equipment: np.ndarray
    building: np.ndarray

    def capex(self, kind: str, discount: np.ndarray) -> np.ndarray:
        """PV weight of 1 USD of capex of a class paid and placed in service in month t,
        net of its deductions: discount[t] - rate x deductions (length T)."""
        months = len(discount) - 1
        return discount[:-1] - self.rate * getattr(self, kind)[:months]


def tax_weights(scenario: Portfolio) -> TaxWeights:
    """The scenario's TaxWeights at its discount factors, (1 + discount_rate)^(-t / 12)."""
    return _tax_weights(scenario.tax, scenario.discount_rate, scenario.months)


@functools.lru_cache(maxsize=32)
def _tax_weights(tax: TaxParams, discount_rate: float, months: int) -> TaxWeights:
    """TaxWeights by what they depend on, computed once (read-only arrays)."""
    discount = (1.0 + discount_rate) ** (-np.arange(months + 1, dtype=np.float64) / 12.0)
    rate = tax.income_rate

    def weights(life: float) -> np.ndarray:
        fractions = deduction_fractions(life, tax.bonus_depreciation)
        out = deduction_weights(fractions, discount, months)
        out.flags.writeable = False
        return out

    return TaxWeights(
        rate=rate,
        after_tax=1.0 - rate,
        asic=weights(tax.asic_life_years),
        equipment=weights(tax.ai_equipment_life_years),
        building=weights(tax.building_life_years),
    )


@functools.lru_cache(maxsize=32)
def deduction_table(life_years: float, bonus: float, months: int) -> np.ndarray:
    """(T, T): the deductions by month of 1 USD placed in service in each month (row p is
    :func:`deduction_months` of p); read-only."""
    fractions = deduction_fractions(life_years, bonus)
    out = np.stack([deduction_months(fractions, p, months) for p in range(months)])
    out.flags.writeable = False
    return out


def hall_deductions(tax: TaxParams, weights: TaxWeights, p: int) -> float:
    """PV of the deductions of 1 USD of the landlord's hall capex placed in service in
    month ``p`` (its equipment and building shares)."""
    p = min(max(p, 0), len(weights.equipment) - 1)
    q = tax.ai_equipment_share
    return q * float(weights.equipment[p]) + (1.0 - q) * float(weights.building[p])


def carried_forward(taxable: Any, rate: float, *, xp: ModuleType = np) -> Any:
    """Tax by year with losses carried forward (``taxable`` (..., Y) [USD], before losses):
    a year's loss is kept and used against at most NOL_USE_LIMIT of a later year's taxable
    income; what is left at the end is lost [USD]."""
    taxable = xp.asarray(taxable)
    carried = xp.zeros(taxable.shape[:-1])
    out = xp.zeros(taxable.shape)
    for y in range(taxable.shape[-1]):
        income = taxable[..., y]
        use = xp.minimum(carried, NOL_USE_LIMIT * xp.maximum(income, 0.0))
        out[..., y] = rate * xp.maximum(income - use, 0.0)
        carried = carried - use + xp.maximum(-income, 0.0)
    return out
