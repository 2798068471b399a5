"""Which live profile a customer id stands for now: the one port every use case that is handed a
customer id depends on (so no service needs the customer service, nor it them)."""

from __future__ import annotations

from loyalty.adapters.customers import CustomerRepository
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.errors import CustomerNotFound
from loyalty.domain.ids import is_plausible_id


class CustomerResolver:
    def __init__(self, *, customers: CustomerRepository) -> None:
        self._customers = customers

    def get(self, customer_id: str) -> Customer:
        if not is_plausible_id(customer_id):
            raise CustomerNotFound(f"customer {customer_id[:64]} does not exist")
        customer = self._customers.get(customer_id)
        seen = {customer_id}
        # A merged profile answers with its survivor, so ids cached in tills keep working.
        while customer is not None and customer.status is CustomerStatus.MERGED and customer.merged_into:
            if customer.merged_into in seen:
                break
            seen.add(customer.merged_into)
            customer = self._customers.get(customer.merged_into)
        if customer is None or customer.status is CustomerStatus.ERASED:
            raise CustomerNotFound(f"customer {customer_id} does not exist", customer_id=customer_id)
        return customer
