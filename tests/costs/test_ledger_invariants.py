"""Property-based: budget = available + held + spent after every operation, and the
ledger agrees with a plain model of what should have happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from jupyter_ext.costs.budgets import CATEGORIES
from jupyter_ext.costs.db import make_engine
from jupyter_ext.costs.ledger import BudgetExceeded, Ledger

NOW = datetime(2026, 7, 15, tzinfo=UTC)
ACCOUNTS = ["user:ann", "user:ben", "group:lab"]
amounts = st.integers(min_value=0, max_value=5_000_000)


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self):
        super().__init__()
        self.engine = make_engine("sqlite://")
        self.ledger = Ledger(self.engine)
        self.budget = {}  # account -> micro
        self.held = dict.fromkeys([*ACCOUNTS, "hub"], 0)
        self.spent = dict.fromkeys([*ACCOUNTS, "hub"], 0)
        self.by_cat = {a: dict.fromkeys(CATEGORIES, 0) for a in [*ACCOUNTS, "hub"]}
        self.overridden = set()
        self.may_overdraw = set()  # metered records, overruns, overrides, lowered budgets

    def teardown(self):
        self.engine.dispose()

    def available(self, a):
        return self.budget[a] - self.held[a] - self.spent[a]

    @rule(account=st.sampled_from(ACCOUNTS), amount=amounts)
    def set_budget(self, account, amount):
        self.ledger.set_budget(account, amount, now=NOW)
        if amount < self.held[account] + self.spent[account] or amount < self.budget.get(account, 0):
            self.may_overdraw.add(account)  # a budget set or lowered below what is committed
        self.budget[account] = amount

    @rule(target=holds, who=st.sets(st.sampled_from(ACCOUNTS), min_size=1), amount=amounts,
          category=st.sampled_from(CATEGORIES))
    def hold(self, who, amount, category):
        accts = sorted(who) + ["hub"]
        fits = all(a not in self.budget or a in self.overridden or amount <= self.available(a)
                   for a in accts)
        try:
            hid = self.ledger.hold(sorted(who), amount, category, "ref", now=NOW)
        except BudgetExceeded as exc:
            assert not fits
            assert exc.account in self.budget and exc.estimate_micro == amount
            assert exc.remaining_micro == self.available(exc.account) < amount
            return None
        assert fits
        for a in accts:
            self.held[a] += amount
        return (hid, tuple(accts), amount, category)

    @rule(h=consumes(holds), frac=st.integers(min_value=0, max_value=150))
    def charge(self, h, frac):
        if h is None:
            return
        hid, accts, amount, category = h
        actual = amount * frac // 100
        out = self.ledger.charge(hid, actual, now=NOW)
        assert out["refunded_micro"] == max(amount - actual, 0)
        for a in accts:
            self.held[a] -= amount
            self.spent[a] += actual
            self.by_cat[a][category] += actual
            if actual > amount:
                self.may_overdraw.add(a)

    @rule(h=consumes(holds))
    def release(self, h):
        if h is None:
            return
        hid, accts, amount, _ = h
        self.ledger.release(hid, now=NOW)
        for a in accts:
            self.held[a] -= amount

    @rule(who=st.sets(st.sampled_from(ACCOUNTS), min_size=1), amount=amounts,
          category=st.sampled_from(CATEGORIES))
    def record(self, who, amount, category):
        self.ledger.record(sorted(who), amount, category, "meter", now=NOW)
        for a in sorted(who) + ["hub"]:
            self.spent[a] += amount
            self.by_cat[a][category] += amount
            self.may_overdraw.add(a)

    @rule(account=st.sampled_from(ACCOUNTS), on=st.booleans())
    def override(self, account, on):
        if account not in self.budget:
            return
        if on:
            self.ledger.override(account, "admin", until=NOW + timedelta(days=1), now=NOW)
            self.overridden.add(account)
            self.may_overdraw.add(account)
        else:
            self.ledger.clear_override(account)
            self.overridden.discard(account)

    @invariant()
    def books_balance(self):
        for a in [*ACCOUNTS, "hub"]:
            s = self.ledger.summary(a, NOW)
            assert (s.held_micro, s.spent_micro) == (self.held[a], self.spent[a])
            assert {c: s.by_category.get(c, 0) for c in CATEGORIES} == self.by_cat[a]
            if a in self.budget:
                assert s.budget_micro == self.budget[a]
                assert s.budget_micro == s.available_micro + s.held_micro + s.spent_micro
                if a not in self.may_overdraw:
                    assert s.available_micro >= 0
                assert s.blocked == (s.available_micro <= 0 and a not in self.overridden)
            else:
                assert s.budget_micro is None and not s.blocked
        assert self.ledger.verify() == []


LedgerMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestLedgerInvariants = LedgerMachine.TestCase
