"""A judge panel's agreement over re-judged episodes, from :mod:`evaluators.agreement`.

The panel's verdict on an episode is the (lower) median of its judges' labels
(:func:`evaluators.agreement.panel_verdict`); how far the panel can be trusted is its
Krippendorff's α over the episodes (ordinal, with a bootstrap interval,
:func:`evaluators.agreement.panel_alpha`), and the episodes to read first are those its judges
are furthest apart on (:func:`evaluators.agreement.disagreement`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from evaluators.agreement import Coefficient, disagreement, panel_alpha, panel_verdict

__all__ = [
    "DISAGREEMENT_SHOWN",
    "PanelAgreement",
    "panel_agreement",
    "panel_verdict",
    "render_panel",
]

#: How many of the most disagreed-on episodes are listed.
DISAGREEMENT_SHOWN = 10


class PanelAgreement(BaseModel):
    """One scale's agreement of a panel over the episodes every judge labelled."""

    models: list[str]
    # Krippendorff's α (ordinal) with its 95% bootstrap interval over the episodes.
    alpha: Coefficient
    episodes: int = 0
    unanimous: int = 0
    # The episodes the judges are furthest apart on, most first: (episode id, spread), spread
    # > 0 only; at most DISAGREEMENT_SHOWN.
    most_disagreed: list[tuple[str, float]] = Field(default_factory=list)
    # episode id -> each judge's label (in ``models`` order), for the listed episodes.
    labels_of: dict[str, list[int | None]] = Field(default_factory=dict)


def panel_agreement(
    by_judge: Mapping[str, Sequence[int | None]], episode_ids: Sequence[str]
) -> PanelAgreement:
    """The panel's agreement from each judge's labels (``by_judge[model][i]`` is its label of
    ``episode_ids[i]``, None where it gave none)."""
    models = list(by_judge)
    items: dict[str, list[int | None]] = {
        episode: [by_judge[m][i] for m in models] for i, episode in enumerate(episode_ids)
    }
    ranked = disagreement(items)
    apart = [(episode, spread) for episode, spread in ranked if spread > 0]
    shown = apart[:DISAGREEMENT_SHOWN]
    return PanelAgreement(
        models=models,
        alpha=panel_alpha(items, level="ordinal"),
        episodes=len(items),
        unanimous=len(ranked) - len(apart),
        most_disagreed=shown,
        labels_of={episode: items[episode] for episode, _ in shown},
    )


def render_panel(agreement: PanelAgreement, *, scale: str) -> str:
    """Plain text: α with its interval, unanimity, and the episodes most disagreed on."""
    lines = [
        f"{scale} panel ({', '.join(agreement.models)}): Krippendorff's alpha (ordinal) = "
        f"{agreement.alpha.render()} over {agreement.alpha.n} episode(s); "
        f"unanimous on {agreement.unanimous} of {agreement.episodes}",
    ]
    for episode, spread in agreement.most_disagreed:
        labels = ", ".join(
            f"{m} {'-' if v is None else v}"
            for m, v in zip(agreement.models, agreement.labels_of.get(episode, []), strict=False)
        )
        lines.append(f"  apart by {spread:g}: {episode} ({labels})")
    return "\n".join(lines)
