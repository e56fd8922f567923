"""Property-based: budget = available + held + spent after every operation, and the
ledger agrees with a plain model of what should have happened, as time moves across
months (holds placed in one month and charged in a later one stay in their month)."""

from __future__ import annotations

from collections import defaultdict
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
        self.now = NOW
        self.budget = {}  # account -> micro
        # books per (account, month): a hold and its charge stay in the month it was placed
        self.held: dict = defaultdict(int)
        self.spent: dict = defaultdict(int)
        self.by_cat: dict = defaultdict(lambda: dict.fromkeys(CATEGORIES, 0))
        self.overridden = {}  # account -> until
        self.may_overdraw = set()  # (account, month): records, overruns, overrides, lowered budgets

    def teardown(self):
        self.engine.dispose()

    @property
    def month(self):
        return f"{self.now:%Y-%m}"

    def available(self, a):
        k = (a, self.month)
        return self.budget[a] - self.held[k] - self.spent[k]

    def is_overridden(self, a):
        return a in self.overridden and self.now < self.overridden[a]

    @rule(days=st.integers(min_value=0, max_value=25))
    def advance_time(self, days):
        self.now += timedelta(days=days, hours=1)

    @rule(account=st.sampled_from(ACCOUNTS), amount=amounts)
    def set_budget(self, account, amount):
        self.ledger.set_budget(account, amount, now=self.now)
        for (a, m) in list(self.held) + list(self.spent):
            if a == account and (amount < self.held[(a, m)] + self.spent[(a, m)]
                                 or amount < self.budget.get(account, 0)):
                self.may_overdraw.add((a, m))  # set or lowered below what is committed
        self.budget[account] = amount

    @rule(target=holds, who=st.sets(st.sampled_from(ACCOUNTS), min_size=1), amount=amounts,
          category=st.sampled_from(CATEGORIES))
    def hold(self, who, amount, category):
        accts = sorted(who) + ["hub"]
        fits = all(a not in self.budget or self.is_overridden(a) or amount <= self.available(a)
                   for a in accts)
        try:
            hid = self.ledger.hold(sorted(who), amount, category, "ref", now=self.now)
        except BudgetExceeded as exc:
            assert not fits
            assert exc.account in self.budget and exc.estimate_micro == amount
            assert exc.remaining_micro == self.available(exc.account) < amount
            return None
        assert fits
        for a in accts:
            self.held[(a, self.month)] += amount
        return (hid, tuple(accts), amount, category, self.month)

    @rule(h=consumes(holds), frac=st.integers(min_value=0, max_value=150))
    def charge(self, h, frac):
        if h is None:
            return
        hid, accts, amount, category, month = h
        actual = amount * frac // 100
        out = self.ledger.charge(hid, actual, now=self.now)
        assert out["refunded_micro"] == max(amount - actual, 0)
        for a in accts:
            self.held[(a, month)] -= amount
            self.spent[(a, month)] += actual
            self.by_cat[(a, month)][category] += actual
            if actual > amount:
                self.may_overdraw.add((a, month))

    @rule(h=consumes(holds))
    def release(self, h):
        if h is None:
            return
        hid, accts, amount, _, month = h
        self.ledger.release(hid, now=self.now)
        for a in accts:
            self.held[(a, month)] -= amount

    @rule(who=st.sets(st.sampled_from(ACCOUNTS), min_size=1), amount=amounts,
          category=st.sampled_from(CATEGORIES))
    def record(self, who, amount, category):
        self.ledger.record(sorted(who), amount, category, "meter", now=self.now)
        for a in sorted(who) + ["hub"]:
            self.spent[(a, self.month)] += amount
            self.by_cat[(a, self.month)][category] += amount
            self.may_overdraw.add((a, self.month))

    @rule(account=st.sampled_from(ACCOUNTS), on=st.booleans())
    def override(self, account, on):
        if account not in self.budget:
            return
        if on:
            until = self.now + timedelta(days=3)
            self.ledger.override(account, "admin", until=until, now=self.now)
            self.overridden[account] = until
            for day in range(4):  # the months an override can reach
                self.may_overdraw.add((account, f"{self.now + timedelta(days=day):%Y-%m}"))
        else:
            self.ledger.clear_override(account)
            self.overridden.pop(account, None)

    @invariant()
    def books_balance(self):
        for a in [*ACCOUNTS, "hub"]:
            k = (a, self.month)
            s = self.ledger.summary(a, self.now)
            assert s.period.key == self.month
            assert (s.held_micro, s.spent_micro) == (self.held[k], self.spent[k])
            assert {c: s.by_category.get(c, 0) for c in CATEGORIES} == self.by_cat[k]
            if a in self.budget:
                assert s.budget_micro == self.budget[a]
                assert s.budget_micro == s.available_micro + s.held_micro + s.spent_micro
                if k not in self.may_overdraw:
                    assert s.available_micro >= 0
                assert s.blocked == (s.available_micro <= 0 and not self.is_overridden(a))
            else:
                assert s.budget_micro is None and not s.blocked
        assert self.ledger.verify() == []


LedgerMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestLedgerInvariants = LedgerMachine.TestCase
