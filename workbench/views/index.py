"""The landing page of ``workbench serve``: a card per app, linking those the user may open."""

from __future__ import annotations

import html

import panel as pn

from workbench import config

APPS = {
    "cubes": ("Cube explorer", "Measures by any level of any dimension; drill, pivot, download."),
    "quality": ("Data quality", "Batches that passed, warned or failed; quarantined rows."),
    "models": ("Models", "Registry, curves, predictions against outcomes, drift; what if."),
    "lineage": ("Lineage", "What each dataset, cube and model is made from, column by column."),
}


class AppIndex(pn.viewable.Viewer):
    """Links to the apps served beside it; apps the user's roles do not open are greyed out."""

    def __init__(self, apps: list[str] | None = None, policy=None, user: str | None = None):
        super().__init__()
        served = list(apps) if apps is not None else list(config.get("serve.apps"))
        self.apps = [a for a in served if a in APPS]
        self.policy = policy
        self.user = user

    def allowed(self) -> list[str]:
        if self.policy is None:
            return list(self.apps)
        return self.policy.apps_for(self.user, self.apps)

    def cards(self) -> list[dict]:
        """What the page shows: one entry per app, with a link when the user may open it."""
        allowed = set(self.allowed())
        return [
            {
                "app": a,
                "title": APPS[a][0],
                "about": APPS[a][1],
                "href": a if a in allowed else None,
            }
            for a in self.apps
        ]

    def __panel__(self):
        items = []
        for card in self.cards():
            title = html.escape(card["title"])
            head = (
                f'<a href="{card["href"]}" class="app-link">{title}</a>'
                if card["href"]
                else f'<span class="app-locked">{title} (not for your role)</span>'
            )
            items.append(f"<li><h3>{head}</h3><p>{html.escape(card['about'])}</p></li>")
        who = ""
        if self.user:
            name = html.escape(self.user)
            who = f'<p>Signed in as <b>{name}</b> · <a href="logout">log out</a></p>'
        body = f"{who}<ul class='apps'>{''.join(items)}</ul>"
        return pn.pane.HTML(body, sizing_mode="stretch_width")
