"""Sign-in, signed-out and not-for-your-role pages: one skeleton, no third-party resources.

Panel's own pages load a logo from its CDN; these load nothing, so a browser behind a firewall
(or one that should not tell a CDN who uses the dashboards) shows them whole. Panel renders them
as Jinja2 templates with its variables (``login_endpoint``, ``errormessage``, ``error_msg``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

LOGIN = """<form class="card" action=".{{ login_endpoint }}" method="post">
  <h1>Workbench dashboards</h1>
  <p>Sign in with the account your administrator gave you.</p>
  <p class="error">{{ errormessage|escape }}</p>
  <input name="username" type="text" autocomplete="username" placeholder="user name" required>
  <input name="password" type="password" autocomplete="current-password" placeholder="password"
         required>
  <button type="submit">Sign in</button>
</form>"""

LOGOUT = """<div class="card">
  <h1>Signed out</h1>
  <p>You have left the Workbench dashboards.</p>
  <a class="button" href=".{{ LOGIN_ENDPOINT }}">Sign in again</a>
</div>"""

DENIED = """<div class="card">
  <h1>Not for your role</h1>
  <p class="error">{{ error_msg }}</p>
  <p>Your account has no role that opens this dashboard; ask an administrator if you need it.</p>
  <a class="button" href="./">All dashboards</a>
</div>"""

PAGES = {
    "login": ("Sign in", LOGIN),
    "logout": ("Signed out", LOGOUT),
    "denied": ("Not for your role", DENIED),
}


def write_pages(folder: Path) -> dict[str, Path]:
    """Write ``login.html``, ``logout.html`` and ``denied.html`` into ``folder``."""
    skeleton = files("workbench.serving").joinpath("templates/page.html").read_text("utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, (title, body) in PAGES.items():
        path = folder / f"{name}.html"
        path.write_text(skeleton.replace("__TITLE__", title).replace("__BODY__", body), "utf-8")
        written[name] = path
    return written
