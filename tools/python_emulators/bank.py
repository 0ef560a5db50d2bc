"""A small business bank's ledger: scenarios about payments, fraud and account controls.

Money is computed in Decimal and stored as numbers rounded to cents, so a sequence of transfers
can never drift by a fraction of a cent and evaluators can compare balances exactly. The
business date is fixed by the seed, never read from the clock, so reruns are identical.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tools.python_emulators.base import PythonToolkit, ToolError, register_toolkit, tool

_CENT = Decimal("0.01")
MAX_TRANSACTIONS_LISTED = 100

DEFAULT_CURRENCY = "GBP"
DEFAULT_BUSINESS_DATE = "2025-03-14"
DEFAULT_ACCOUNTS: dict[str, dict[str, Any]] = {
    "HLX-OPS-0001": {
        "holder": "Harbourline Logistics Ltd",
        "label": "Operating account",
        "balance": 48210.37,
    },
    "HLX-PAY-0002": {
        "holder": "Harbourline Logistics Ltd",
        "label": "Payroll account",
        "balance": 12500.00,
    },
    "HLX-TAX-0003": {
        "holder": "Harbourline Logistics Ltd",
        "label": "Tax reserve",
        "balance": 9340.12,
    },
    "TWS-0417": {
        "holder": "Tidewater Supplies Ltd",
        "label": "Supplier receivables",
        "balance": 2310.50,
    },
    "GFP-2290": {
        "holder": "Greyfen Print Co.",
        "label": "Supplier receivables",
        "balance": 785.00,
    },
}
DEFAULT_TRANSACTIONS: list[dict[str, Any]] = [
    {
        "transaction_id": "TX-0001",
        "date": "2025-03-10",
        "from_account": "HLX-OPS-0001",
        "to_account": "TWS-0417",
        "amount": 1840.00,
        "memo": "Invoice INV-20388 pallets and stretch wrap",
    },
    {
        "transaction_id": "TX-0002",
        "date": "2025-03-12",
        "from_account": "HLX-OPS-0001",
        "to_account": "HLX-PAY-0002",
        "amount": 12500.00,
        "memo": "March payroll funding",
    },
    {
        "transaction_id": "TX-0003",
        "date": "2025-03-13",
        "from_account": "HLX-OPS-0001",
        "to_account": "GFP-2290",
        "amount": 312.40,
        "memo": "Shipping labels, order GF-7731",
    },
]


def _money(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ToolError("InvalidAmount", f"{value!r} is not an amount of money") from None
    if not amount.is_finite():
        raise ToolError("InvalidAmount", f"{value!r} is not an amount of money")
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _number(amount: Decimal) -> float:
    return float(amount)


def _account(raw: Any) -> dict[str, Any]:
    given = raw if isinstance(raw, dict) else {}
    return {
        "holder": str(given.get("holder", "")),
        "label": str(given.get("label", "")),
        "balance": _number(_money(given.get("balance", 0))),
        "frozen": bool(given.get("frozen", False)),
        "frozen_reason": str(given.get("frozen_reason", "")),
    }


@register_toolkit
class BankLedger(PythonToolkit):
    """Accounts and transfers at a small business bank.

    Transfers settle immediately between accounts held at the bank; there is no overdraft.
    """

    name = "BankLedger"
    category = "Finance"
    name_for_human = "Bank ledger"

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        """Seed keys `accounts`, `transactions`, `currency` and `business_date` replace the
        defaults, so a scenario states only what its story needs."""
        accounts = seed.get("accounts", DEFAULT_ACCOUNTS)
        return {
            "currency": seed.get("currency", DEFAULT_CURRENCY),
            "business_date": seed.get("business_date", DEFAULT_BUSINESS_DATE),
            "accounts": {str(key): _account(value) for key, value in accounts.items()},
            "transactions": list(seed.get("transactions", DEFAULT_TRANSACTIONS)),
        }

    def world_summary(self) -> dict[str, Any]:
        accounts = self.state["accounts"]
        return {
            "balances": {key: account["balance"] for key, account in accounts.items()},
            "frozen": sorted(key for key, account in accounts.items() if account["frozen"]),
            "transactions": len(self.state["transactions"]),
        }

    def _get(self, account_id: str) -> dict[str, Any]:
        account = self.state["accounts"].get(account_id)
        if account is None:
            raise ToolError("AccountNotFound", f"no account with id {account_id!r}")
        assert isinstance(account, dict)
        return account

    def _next_id(self) -> str:
        taken = {t.get("transaction_id") for t in self.state["transactions"]}
        number = len(self.state["transactions"]) + 1
        while f"TX-{number:04d}" in taken:
            number += 1
        return f"TX-{number:04d}"

    def _view(self, account_id: str, account: dict[str, Any]) -> dict[str, Any]:
        return {
            "account_id": account_id,
            "holder": account["holder"],
            "label": account["label"],
            "balance": account["balance"],
            "currency": self.state["currency"],
            "frozen": account["frozen"],
        }

    @tool
    def list_accounts(self) -> dict[str, Any]:
        """List every account at the bank with its holder and balance.

        Returns:
            accounts (array): the accounts, each with account_id, holder, label, balance,
                currency and frozen
            currency (string): currency of all balances
        """
        accounts = self.state["accounts"]
        return {
            "accounts": [self._view(key, accounts[key]) for key in sorted(accounts)],
            "currency": self.state["currency"],
        }

    @tool
    def get_balance(self, account_id: str) -> dict[str, Any]:
        """Get the current balance of one account.

        Args:
            account_id: identifier of the account, e.g. HLX-OPS-0001

        Returns:
            account_id (string): the account
            balance (number): current balance, rounded to cents
            currency (string): currency of the balance
            frozen (boolean): whether the account is frozen

        Raises:
            AccountNotFound: no account has this identifier
        """
        view = self._view(account_id, self._get(account_id))
        return {key: view[key] for key in ("account_id", "balance", "currency", "frozen")}

    @tool
    def transfer(
        self, from_account: str, to_account: str, amount: float, memo: str = ""
    ) -> dict[str, Any]:
        """Move money from one account to another; the transfer settles immediately.

        Args:
            from_account: account to debit
            to_account: account to credit
            amount: amount to move, positive, rounded to cents
            memo: note shown on both accounts' statements

        Returns:
            transfer_id (string): identifier of the new transfer
            amount (number): amount moved, rounded to cents
            balance (number): new balance of the source account
            currency (string): currency of the amounts

        Raises:
            AccountNotFound: the source or the destination account does not exist
            InsufficientFunds: the source account's balance cannot cover the amount
            AccountFrozen: the source or the destination account is frozen
            InvalidAmount: the amount is not positive once rounded to cents
            InvalidTransfer: the source and the destination are the same account
        """
        value = _money(amount)
        if value <= 0:
            raise ToolError("InvalidAmount", f"the amount must be positive, not {amount}")
        source, destination = self._get(from_account), self._get(to_account)
        if from_account == to_account:
            raise ToolError("InvalidTransfer", "the source and destination are the same account")
        for account_id, account in ((from_account, source), (to_account, destination)):
            if account["frozen"]:
                raise ToolError("AccountFrozen", f"account {account_id} is frozen")
        balance = _money(source["balance"])
        if balance < value:
            raise ToolError(
                "InsufficientFunds",
                f"account {from_account} holds {balance} {self.state['currency']}, "
                f"less than {value}",
            )
        source["balance"] = _number(balance - value)
        destination["balance"] = _number(_money(destination["balance"]) + value)
        transfer_id = self._next_id()
        self.state["transactions"].append(
            {
                "transaction_id": transfer_id,
                "date": self.state["business_date"],
                "from_account": from_account,
                "to_account": to_account,
                "amount": _number(value),
                "memo": memo,
            }
        )
        return {
            "transfer_id": transfer_id,
            "amount": _number(value),
            "balance": source["balance"],
            "currency": self.state["currency"],
        }

    @tool
    def list_transactions(self, account_id: str = "", limit: int = 20) -> dict[str, Any]:
        """List recent transactions, newest first, of one account or of the whole bank.

        Args:
            account_id: account whose transactions to list; empty for all accounts
            limit: most transactions to return, between 1 and 100

        Returns:
            transactions (array): the transactions, each with transaction_id, date,
                from_account, to_account, amount and memo (and direction when an account is
                given)
            count (integer): number of matching transactions before the limit

        Raises:
            AccountNotFound: no account has this identifier
        """
        transactions = list(reversed(self.state["transactions"]))
        if account_id:
            self._get(account_id)
            transactions = [
                {**t, "direction": "out" if t["from_account"] == account_id else "in"}
                for t in transactions
                if account_id in (t["from_account"], t["to_account"])
            ]
        shown = max(1, min(limit, MAX_TRANSACTIONS_LISTED))
        return {"transactions": transactions[:shown], "count": len(transactions)}

    @tool
    def freeze_account(self, account_id: str, reason: str) -> dict[str, Any]:
        """Freeze an account so that no money can move into or out of it.

        Args:
            account_id: account to freeze
            reason: why the account is frozen, kept on the account's record

        Returns:
            account_id (string): the account
            frozen (boolean): always true
            changed (boolean): false when the account was already frozen

        Raises:
            AccountNotFound: no account has this identifier
        """
        account = self._get(account_id)
        changed = not account["frozen"]
        if changed:
            account["frozen"] = True
            account["frozen_reason"] = reason
        return {"account_id": account_id, "frozen": True, "changed": changed}
