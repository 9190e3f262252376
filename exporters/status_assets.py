"""The status page's style and its one script, inlined in every page.

The server's Content-Security-Policy allows exactly these two (by their sha256), and
nothing else: no other script, no style attribute, no network but the page's own
origin for the script's requests. The page works without the script (it then reloads
itself every 30 s from a ``<noscript>`` refresh); with it, it polls ``/api/status``
every 2 s and, when the version changed (a run finished or started), fetches the same
page and swaps its banner and main content in place, keeping keyboard focus.
"""

from __future__ import annotations

__all__ = ["POLL_SECONDS", "SCRIPT", "STYLE"]

POLL_SECONDS = 2

STYLE = """
:root { color-scheme: light; --fail: #a4001d; --fail-bg: #fde8eb; --warn: #6d4400;
  --warn-bg: #fff2cc; --ok: #17612a; --ok-bg: #e5f3e8; --none: #454545; --none-bg: #ececec; }
* { box-sizing: border-box; }
body { font: 16px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72em;
  padding: 0.5em 1em 2em; color: #1a1a1a; background: #fff; }
a { color: #0b4f9c; }
a:focus-visible, [tabindex]:focus-visible { outline: 3px solid #111; outline-offset: 2px; }
header { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0.5em;
  align-items: baseline; border-bottom: 1px solid #ccc; }
header p { margin: 0.4em 0; }
.live { color: #454545; font-size: 0.9em; }
.banner { margin: 1em 0; padding: 0.8em 1em; border-radius: 6px; font-size: 1.15em;
  border-left: 8px solid; }
.banner.failing, .state.failing { color: var(--fail); background: var(--fail-bg); }
.banner.degraded, .state.degraded { color: var(--warn); background: var(--warn-bg); }
.banner.ok, .state.ok { color: var(--ok); background: var(--ok-bg); }
.banner.no-data, .state.no-data { color: var(--none); background: var(--none-bg); }
.state { display: inline-block; padding: 0 0.45em; border-radius: 4px; font-weight: 600;
  white-space: nowrap; }
.warning { padding: 0.6em 1em; border: 2px solid var(--warn); background: var(--warn-bg); }
h1 { font-size: 1.5em; margin: 0.6em 0 0.3em; }
h2 { font-size: 1.2em; margin: 0; }
h3 { font-size: 1.05em; margin: 1em 0 0.3em; }
section.process { border: 1px solid #ccc; border-radius: 6px; padding: 0.8em 1em;
  margin: 1em 0; }
section.process.failing { border-left: 8px solid var(--fail); }
section.process.degraded { border-left: 8px solid var(--warn); }
dl.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(15em, 1fr));
  gap: 0.2em 1.5em; margin: 0.7em 0; }
dl.facts div { min-width: 0; }
dt { font-size: 0.85em; color: #454545; }
dd { margin: 0; overflow-wrap: anywhere; }
.risk { font-weight: 700; color: var(--fail); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: 0.4em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.35em 0.5em; text-align: left;
  vertical-align: top; }
thead th { font-size: 0.85em; color: #454545; }
th[scope=row] { font-weight: normal; }
small { color: #454545; }
.running { color: #0b4f9c; font-weight: 600; white-space: nowrap; }
.message { font-family: ui-monospace, monospace; font-size: 0.85em; white-space: pre-wrap;
  overflow-wrap: anywhere; max-width: 40em; }
svg.strip { display: block; }
svg.strip .ok { fill: #2e7d32; } svg.strip .some { fill: #b06000; }
svg.strip .bad { fill: #a4001d; } svg.strip .empty { fill: #d6d6d6; }
svg.strip .lat { fill: #4a6fa5; } svg.strip .slow { fill: #6a1b9a; }
svg.strip .frame { fill: transparent; stroke: none; }
svg.strip g:focus { outline: none; }
svg.strip g:focus .frame, svg.strip g:hover .frame { stroke: #111; stroke-width: 2; }
footer { margin-top: 2em; font-size: 0.9em; color: #454545; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip-path: inset(50%); white-space: nowrap; }
@media (max-width: 40em) {
  body { padding: 0.3em 0.5em 1em; font-size: 15px; }
  th, td { padding: 0.3em; }
  table.journeys thead { position: absolute; width: 1px; height: 1px; overflow: hidden;
    clip-path: inset(50%); }
  table.journeys tr { display: block; border-bottom: 1px solid #ccc; padding: 0.4em 0; }
  table.journeys th, table.journeys td { display: block; border: 0; padding: 0.15em 0; }
}
"""

SCRIPT = """
const live = document.getElementById('live');
let version = document.body.dataset.version;
let busy = false;
function swap(fresh, id) {
  const now = document.getElementById(id), next = fresh.getElementById(id);
  if (!now || !next) return;
  if (now.className !== next.className) now.className = next.className;
  if (now.innerHTML !== next.innerHTML) now.replaceChildren(...next.childNodes);
}
async function follow() {
  if (busy || document.hidden) return;
  busy = true;
  try {
    const status = await fetch('/api/status', {cache: 'no-store'});
    if (!status.ok) throw new Error('HTTP ' + status.status);
    if ((await status.json()).version !== version) {
      const reply = await fetch(location.pathname + location.search, {cache: 'no-store'});
      if (!reply.ok) throw new Error('HTTP ' + reply.status);
      const fresh = new DOMParser().parseFromString(await reply.text(), 'text/html');
      const focused = document.activeElement ? document.activeElement.id : '';
      swap(fresh, 'banner');
      swap(fresh, 'main');
      document.title = fresh.title;
      version = fresh.body.dataset.version;
      const again = focused && document.getElementById(focused);
      if (again && again !== document.activeElement) again.focus();
    }
    live.textContent = 'Live: checked at ' + new Date().toLocaleTimeString();
  } catch (error) {
    live.textContent = 'Live updates paused (' + error.message + '), retrying';
  } finally {
    busy = false;
  }
}
setInterval(follow, POLL_MS);
document.addEventListener('visibilitychange', follow);
""".replace("POLL_MS", str(POLL_SECONDS * 1000))
