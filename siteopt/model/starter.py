"""The text of ``siteopt init DIR``: a commented one-site starter scenario that validates
and solves (written by :func:`siteopt.output.files.write_starter`).

Every number is a typical public figure (docs/sources.md); the comments say what each
key means and which keys the schema adds with defaults (docs/scenario.md lists them all).
"""

from __future__ import annotations

STARTER_NAME = "scenario.yaml"

STARTER_YAML = """\
# A starter scenario: one West Texas mining site that may convert part of its power to host
# AI for one tenant. Edit the numbers, then:
#   siteopt validate scenario.yaml      # every problem as FILE:LINE: key: message
#   siteopt show scenario.yaml          # this file with every default filled in
#   siteopt solve scenario.yaml         # the valuation and the build plan
# Every key, its unit, default and bounds: docs/scenario.md (or `siteopt schema --markdown`).
# Units are in the key names; shares and rates are fractions (0.12, not 12).
name: my-first-site
start: 2027-01                      # first month of the horizon, YYYY-MM
horizon_years: 10
discount_rate: 0.12                 # annual equity discount rate

simulation:
  scenarios: 20000                  # Monte Carlo scenarios (1,000 or more for stable tails)
  seed: 7                           # same seed, same draws, same plan

market:
  btc_price_usd: 90000              # BTC price at the start, USD
  hashrate_eh: 1200                 # network hashrate at the start, EH/s
  # halving_months omitted: every halving inside the horizon is generated (2028-04, ...)

power_markets:
  ercot-west:                       # a name you choose; sites refer to it
    price_usd_mwh: 35               # mean wholesale price, USD/MWh
    spike_hours_share: 0.03         # share of hours priced at the spike price
    spike_price_usd_mwh: 350
    transmission_4cp_usd_kw_year: 55

sites:
  - name: my-site
    market: ercot-west
    interconnect_mw: 100            # grid interconnect, MW
    curtailable: true               # mining may stop in price spikes
    power:
      ppa_mw: 80                    # fixed-price take-or-pay supply, MW
      ppa_price_usd_mwh: 34
    mining:
      mw: 100                       # grid MW of mining load today
      efficiency_j_th: 20           # fleet average, J/TH
      opex_usd_mw_month: 9000       # fixed opex, USD per MW-month
      asic_cost_usd_th: 15          # ASIC price for refreshes, USD per TH
      opex_avoidable_share: 0.3     # opex saved in a month the site idles (it idles when that pays)
      refresh: when_it_pays         # refresh ASICs when the margin gained pays (or always, never)
    ai:
      max_it_mw: 60                 # critical-IT MW it can host (x pue within the interconnect)
      pue: 1.2
      build_capex_usd_mw: 9500000   # new AI hall, USD per MW of IT ($8-11M public range)
      lead_time_months: 15          # construction start to first rent
      opex_usd_mw_month: 20000      # AI opex, USD per MW of IT per month

contracts:
  - name: hyperscaler
    price_usd_kw_month: 110         # STARTING rent, USD per kW of IT per month; escalates
    escalator: 0.03                 # 3% a year (public term averages already include it)
    term_years: 15
    min_mw: 20                      # the tenant signs for at least this much IT
    max_mw: 60
    renewal_prob: 0.75              # chance the tenant renews at its term's end, at market rent
    relet_term_years: 5             # term of each renewal and successor tenant
    successor_default_prob: 0.04    # annual exit probability of successor tenants
    # financing: {loan_to_cost: 0.5, rate: 0.0925, term_years: 5, amortization: bullet}
    #                               # this tenant's own debt, over financing.debt below

financing:
  capital_budget_usd: {2027: 150000000, 2028: 100000000}   # equity per calendar year, USD
  debt:
    loan_to_cost: 0.7               # project debt share of the landlord's capex
    rate: 0.08

build:
  decision_years: [2027, 2028]      # years in which construction may start
  ai_step_mw: 20                    # AI IT MW levels offered: 20, 40, 60
"""
