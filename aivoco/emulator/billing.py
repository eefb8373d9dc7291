"""Credits and admin units per API key (docs/protocols.md#sts-credits, #sts-functions).

Balances belong to a key, not to a connection: they last as long as the emulator, so a
second call with the same key sees what the first one left. A session is handed only
the `Account` of the key it authenticated with, never the whole `Ledger`'s contents.
"""

from __future__ import annotations


class Account:
    """One key's two balances: credits (call time) and admin units (functions)."""

    def __init__(self, credits: float, admin_units: float) -> None:
        self.credits = credits
        self.admin_units = admin_units

    def charge(self, amount: float) -> float:
        """Take credits, never below zero (a call cannot owe); returns what is left."""
        self.credits = max(0.0, self.credits - amount)
        return self.credits

    def charge_admin(self, amount: float) -> float:
        """Take admin units; returns what is left.

        Not floored: loading definitions is charged whatever the balance, and the next
        function call then finds the account short (`insufficient_admin_units`).
        """
        self.admin_units -= amount
        return self.admin_units


class Ledger:
    """Every key's account, each opened with the configured starting balances."""

    def __init__(self, credits: float, admin_units: float) -> None:
        self._credits = credits
        self._admin_units = admin_units
        self._accounts: dict[str, Account] = {}

    def account(self, key: str) -> Account:
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = Account(self._credits, self._admin_units)
        return account
