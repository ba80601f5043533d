"""The price catalog: monthly fee per plan and the frozen fee, in cents. Never from a client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from lifecycle.rules.errors import ValidationFailed

DEFAULT_MONTHLY_FEES: Mapping[str, int] = MappingProxyType(
    {"starter": 2900, "standard": 4900, "premium": 9900}
)
DEFAULT_FROZEN_FEE = 900
DEFAULT_CURRENCY = "usd"


@dataclass(frozen=True, slots=True)
class Catalog:
    """Prices in integer cents; built from configuration (`lifecycle.settings`)."""

    monthly_fees: Mapping[str, int] = field(default_factory=lambda: DEFAULT_MONTHLY_FEES)
    frozen_fee: int = DEFAULT_FROZEN_FEE
    currency: str = DEFAULT_CURRENCY

    def __post_init__(self) -> None:
        if not self.monthly_fees:
            raise ValueError("a catalog needs at least one plan")
        if any(fee < 0 for fee in self.monthly_fees.values()) or self.frozen_fee < 0:
            raise ValueError("fees are never negative")

    @property
    def plans(self) -> tuple[str, ...]:
        return tuple(self.monthly_fees)

    def monthly_fee(self, plan: str) -> int:
        try:
            return self.monthly_fees[plan]
        except KeyError:
            raise ValidationFailed(
                f"Unknown plan {plan!r}; choose one of: {', '.join(self.plans)}.",
                field="plan",
            ) from None


DEFAULT_CATALOG = Catalog()
