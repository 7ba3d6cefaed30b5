"""Every plan that can be started: the config's, and those made later (on the web dashboard).

The config's plans come first and cannot be replaced by a later plan of the same name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from sessions.plans import Plan


class PlanBook(Mapping[str, Plan]):
    def __init__(self, configured: Iterable[Plan]) -> None:
        self._configured = {plan.name: plan for plan in configured}
        self._added: dict[str, Plan] = {}

    @property
    def configured(self) -> Mapping[str, Plan]:
        return self._configured

    @property
    def added(self) -> Mapping[str, Plan]:
        return self._added

    def put(self, plan: Plan) -> None:
        """Add or replace a plan made later; a configured plan's name is refused."""
        if plan.name in self._configured:
            raise ValueError(f"{plan.name!r} is a plan of the config file")
        self._added[plan.name] = plan

    def __getitem__(self, name: str) -> Plan:
        plan = self._configured.get(name)
        return plan if plan is not None else self._added[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._configured
        yield from (name for name in self._added if name not in self._configured)

    def __len__(self) -> int:
        return len(self._configured) + sum(1 for name in self._added if name not in self._configured)
