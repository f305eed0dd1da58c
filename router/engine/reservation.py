"""What an admission reserved (a hold on each budget counter, the store's record of them) and the
budget that refused one: the shapes the budget book, accounting and the pipeline pass around."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from router.core.budgets import Amounts
from router.policy.schema import Budget


@dataclass(frozen=True)
class Hold:
    key: str
    unit: str
    amount: float  # what was reserved; 0 when the store was down and nothing could be
    ttl: float
    budget: str = ""  # the budget and scope whose counter it is (records spilled by older versions lack them)
    scope: str = ""
    lease: str = ""  # the lease it was drawn on (router.engine.leases); "" when reserved in the store


@dataclass(frozen=True)
class Reservation:
    """What one admission reserved: the store's record of it (`id`) and each counter's amount."""

    id: str | None = None  # None when nothing was recorded (the store was down, or no budget applies)
    holds: tuple[Hold, ...] = ()

    def to_dict(self) -> dict:
        # vars(), not dataclasses.asdict: the fields are flat, and asdict's deep copy cost ~30 us a request.
        return {"id": self.id, "holds": [dict(vars(h)) for h in self.holds]}

    def counted(self, actual: Amounts) -> list[list]:
        """[budget, scope, usd, tokens, reasoning] for each budget scope the reservation drew on,
        what its settlement adds there: the ledger record's `budgets`, which `report` sums."""
        scopes = dict.fromkeys((h.budget, h.scope) for h in self.holds if h.budget)
        return [[budget, scope, actual.usd, actual.tokens, actual.reasoning] for budget, scope in scopes]

    @classmethod
    def from_dict(cls, data: dict | None) -> Reservation:
        data = data or {}
        return cls(data.get("id"), tuple(Hold(**h) for h in data.get("holds", ())))


@dataclass(frozen=True)
class Exceeded:
    budget: Budget
    unit: str
    limit: float
    spent: float
    reset_at: float

    def message(self) -> str:
        unit = "USD" if self.unit == "usd" else f"{self.unit} tokens" if self.unit == "reasoning" else "tokens"
        when = datetime.fromtimestamp(self.reset_at, UTC).isoformat(timespec="seconds")
        return (
            f"budget '{self.budget.name}' ({self.budget.per}, {self.budget.window}) is exhausted: "
            f"{self.spent:.6g} of {self.limit:.6g} {unit} spent; it frees up at {when}"
        )

    def details(self) -> dict:
        return {
            "budget": self.budget.name,
            "per": self.budget.per,
            "window": self.budget.window,
            "unit": self.unit,
            "limit": self.limit,
            "spent": round(self.spent, 9),
            "reset_at": self.reset_at,
        }
