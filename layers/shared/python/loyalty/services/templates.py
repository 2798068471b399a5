"""Message templates: checked by rendering them in the sandbox when saved, then stored."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from loyalty.adapters.programme import ProgrammeRepository
from loyalty.adapters.templates import TemplateInUseByProgramme, TemplateRepository
from loyalty.domain import rendering
from loyalty.domain.errors import TemplateInUse, TemplateNotFound
from loyalty.domain.templates import TRIGGERS, Template, misfit
from loyalty.services.ports import Clock

# Who else sends templates: `template_id, template (None: being deleted) -> why that breaks them`
# (campaigns, through the composition root), None when it does not.
TemplateCheck = Callable[[str, Template | None], str | None]


class TemplateService:
    def __init__(
        self,
        *,
        repo: TemplateRepository,
        programme: ProgrammeRepository,
        clock: Clock,
        other_checks: Sequence[TemplateCheck] = (),
    ) -> None:
        self._repo = repo
        self._programme = programme  # read uncached: which templates the programme names right now
        self._clock = clock
        self._other_checks = tuple(other_checks)

    def put(self, template: Template) -> tuple[Template, bool]:
        """Create or replace: a template that cannot render is a 422 naming the field; one the
        programme uses must still serve its trigger (409 otherwise)."""
        checked = replace(template, placeholders=rendering.check(template))
        for field in sorted(self._uses(checked.template_id)):
            reason = misfit(checked, TRIGGERS[field])
            if reason is not None:
                raise TemplateInUse(
                    f"the programme's messaging.{field} names this template, and {reason}",
                    template_id=checked.template_id,
                )
        self._check_others(checked.template_id, checked)
        return self._repo.put(checked, self._clock.now())

    def get(self, template_id: str) -> Template:
        template = self._repo.get(template_id)
        if template is None:
            raise TemplateNotFound(f"no template {template_id[:64]!r}", template_id=template_id[:64])
        return template

    def list(self, limit: int, cursor: str | None) -> tuple[list[Template], str | None]:
        return self._repo.list(limit, cursor)

    def delete(self, template_id: str) -> None:
        """Delete it unless the programme or a campaign that has not ended sends it (409)."""
        if self._repo.get(template_id) is not None:
            self._check_others(template_id, None)
        try:
            deleted = self._repo.delete(template_id)
        except TemplateInUseByProgramme:
            fields = ", ".join(f"messaging.{f}" for f in sorted(self._uses(template_id))) or "messaging"
            raise TemplateInUse(
                f"the programme uses this template ({fields}); point it elsewhere first",
                template_id=template_id,
            ) from None
        if not deleted:
            raise TemplateNotFound(f"no template {template_id[:64]!r}", template_id=template_id[:64])

    def _check_others(self, template_id: str, template: Template | None) -> None:
        for check in self._other_checks:
            reason = check(template_id, template)
            if reason is not None:
                raise TemplateInUse(reason, template_id=template_id)

    def _uses(self, template_id: str) -> set[str]:
        programme = self._programme.get()
        if programme is None:
            return set()
        return {f for f, t in programme.messaging.template_refs().items() if t == template_id}
