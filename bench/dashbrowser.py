"""The browser side of ``bench/bench_dashboard.py``: timed page loads and reruns, and
where a page load's time goes (``--profile``).

For one profiled page load it records, from navigation:

- the websocket: when it opened, every frame's time and size (so the server's part is
  the span from the browser's rerun request to Streamlit's last message, and the bytes
  are what is serialised and sent);
- the page: when the first KPI, each chart's canvas and the end of the script run
  appeared (a ``MutationObserver`` installed before the page's own scripts);
- the browser's CPU: a V8 sampling profile (Chrome DevTools Protocol ``Profiler``),
  self time summed by script file and by function, plus layout/style/paint counters
  (``Performance.getMetrics``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


def load(context: Any, url: str, *, bare: bool = False) -> float:
    """Seconds from navigation until the default view is fully drawn (``bare``: the one
    metric), in a new page (a new Streamlit session) of a browser that has loaded the
    page before (static files cached, as for anyone who opens the dashboard daily)."""
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        started = time.perf_counter()
        page.goto(url)
        if bare:
            bare_drawn(page)
        else:
            drawn(page)
        return time.perf_counter() - started
    finally:
        page.close()


def bare_drawn(page: Any) -> None:
    page.wait_for_selector('[data-testid="stMetric"]')
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


_RERUN_JS = """async () => {
  const app = document.querySelector('[data-testid="stApp"]');
  const button = [...document.querySelectorAll('button')]
      .find(b => b.innerText.trim() === '%s');
  let running = false;
  const done = new Promise(resolve => {
    new MutationObserver((_, obs) => {
      const state = app.getAttribute('data-test-script-state');
      if (state === 'running') running = true;
      if (running && state === 'notRunning') { obs.disconnect(); resolve(); }
    }).observe(app, {attributes: true});
  });
  const t0 = performance.now();
  button.click();
  await done;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return (performance.now() - t0) / 1000;
}"""


def rerun(context: Any, url: str, times: int) -> list[float]:
    """Seconds to draw the default view again in an open page (the reset-filters button:
    a full script run, data from the cache)."""
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(url)
        drawn(page)
        return [float(page.evaluate(_RERUN_JS % "필터 초기화")) for _ in range(times)]
    finally:
        page.close()


def drawn(page: Any) -> None:
    page.wait_for_selector('[data-testid="stMetric"]')
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas,"
        " [data-testid=\"stVegaLiteChart\"] svg.marks').length >= 4"
    )
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


# Records, in page time (ms since navigation start), when each part first appears.
_OBSERVER_JS = """
(() => {
  const seen = window.__pdhMessages = [];
  const Real = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Real(...args);
    ws.addEventListener('message', (ev) => {
      const t = performance.now();
      const data = ev.data;
      if (data instanceof ArrayBuffer) {
        const bytes = new Uint8Array(data);
        let bin = '';
        for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
        seen.push([t, btoa(bin)]);
      } else if (data instanceof Blob) {
        data.arrayBuffer().then((buf) => {
          const bytes = new Uint8Array(buf);
          let bin = '';
          for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
          seen.push([t, btoa(bin)]);
        });
      }
    });
    return ws;
  };
  window.WebSocket.prototype = Real.prototype;
  Object.assign(window.WebSocket, Real);
  const marks = window.__pdhMarks = {};
  const mark = (name) => { if (!(name in marks)) marks[name] = performance.now(); };
  const look = () => {
    if (document.querySelector('[data-testid="stMetric"]')) mark('first_kpi');
    const charts = document.querySelectorAll(
      '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg.marks');
    for (let i = 1; i <= charts.length; i++) mark('chart_' + i);
    if (document.querySelector('[data-testid="stDataFrame"] canvas')) mark('table');
    const app = document.querySelector('[data-testid="stApp"]');
    if (app && app.getAttribute('data-test-script-state') === 'running') mark('script_running');
    if (app && 'script_running' in marks
        && app.getAttribute('data-test-script-state') === 'notRunning') mark('script_done');
  };
  new MutationObserver(look).observe(document, {subtree: true, childList: true,
                                                attributes: true});
})();
"""


@dataclass
class Profile:
    """One page load, taken apart."""

    total_s: float = 0.0
    marks_ms: dict[str, float] = field(default_factory=dict)
    ws_open_ms: float | None = None
    frames_in: list[tuple[float, int]] = field(default_factory=list)  # (ms, bytes)
    frames_out: list[tuple[float, int]] = field(default_factory=list)
    messages: list[tuple[float, str, int]] = field(default_factory=list)  # page ms, kind, bytes
    by_file_ms: dict[str, float] = field(default_factory=dict)
    by_function_ms: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"page load {self.total_s:.2f} s"]
        if self.ws_open_ms is not None:
            out.append(f"  websocket open          {self.ws_open_ms:7.0f} ms")
        if self.frames_out and self.frames_in:
            first_out = self.frames_out[0][0]
            last_in = self.frames_in[-1][0]
            out.append(f"  rerun request sent      {first_out:7.0f} ms")
            out.append(f"  last server message     {last_in:7.0f} ms  (server + wire: "
                       f"{last_in - first_out:.0f} ms; {len(self.frames_in)} messages, "
                       f"{sum(b for _, b in self.frames_in) / 1024:.0f} KiB)")
        if self.messages:
            t0 = self.messages[0][0]
            out.append(f"  messages (page time): first {t0:.0f} ms, last "
                       f"{self.messages[-1][0]:.0f} ms, {len(self.messages)} messages, "
                       f"{sum(m[2] for m in self.messages) / 1024:.0f} KiB")
            for t, kind, size in self.messages:
                if size > 2000 or not kind.startswith(("markdown", "block", "text")):
                    out.append(f"    {t:7.0f} ms {size:7d} B  {kind}")
        for name, ms in sorted(self.marks_ms.items(), key=lambda kv: kv[1]):
            out.append(f"  {name:<23} {ms:7.0f} ms")
        for name in ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration",
                     "TaskDuration"):
            if name in self.metrics:
                out.append(f"  browser {name:<15} {self.metrics[name] * 1000:7.0f} ms")
        total = sum(self.by_file_ms.values()) or 1.0
        out.append("  browser JS self time by file (V8 samples):")
        for name, ms in sorted(self.by_file_ms.items(), key=lambda kv: -kv[1])[:8]:
            out.append(f"    {ms:6.0f} ms {ms / total:4.0%}  {name}")
        out.append("  top functions:")
        for name, ms in sorted(self.by_function_ms.items(), key=lambda kv: -kv[1])[:12]:
            out.append(f"    {ms:6.0f} ms  {name}")
        return out


def _decode(raw: list[list[Any]]) -> list[tuple[float, str, int]]:
    """Streamlit's messages, by page time: what each one carried."""
    import base64

    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    out: list[tuple[float, str, int]] = []
    for t, b64 in sorted(raw, key=lambda r: float(r[0])):
        data = base64.b64decode(b64)
        msg = ForwardMsg()
        try:
            msg.ParseFromString(data)
        except Exception:  # noqa: BLE001 - not a ForwardMsg: say so, keep going
            out.append((float(t), "?", len(data)))
            continue
        kind = msg.WhichOneof("type") or "?"
        if kind == "delta":
            delta = msg.delta
            inner = delta.WhichOneof("type") or "?"
            if inner == "new_element":
                inner = delta.new_element.WhichOneof("type") or "?"
            elif inner == "add_block":
                inner = "block:" + (delta.add_block.WhichOneof("type") or "vertical")
            kind = inner
        elif kind == "script_finished":
            kind = f"script_finished({msg.script_finished})"
        out.append((float(t), kind, len(data)))
    return out


def _short(url: str) -> str:
    if not url:
        return "(native: GC, parse, idle)"
    return url.rsplit("/", 1)[-1].split("?", 1)[0] or url


def _self_times(profile: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    nodes = {n["id"]: n for n in profile["nodes"]}
    hits: dict[int, float] = defaultdict(float)
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        hits[node_id] += delta / 1000.0  # µs -> ms
    by_file: dict[str, float] = defaultdict(float)
    by_fn: dict[str, float] = defaultdict(float)
    for node_id, ms in hits.items():
        frame = nodes[node_id]["callFrame"]
        fn = frame.get("functionName") or "(anonymous)"
        if fn in ("(idle)", "(program)", "(garbage collector)", "(root)"):
            by_file[fn] += ms
            by_fn[fn] += ms
            continue
        name = _short(frame.get("url", ""))
        by_file[name] += ms
        by_fn[f"{fn} ({name}:{frame.get('lineNumber', 0) + 1})"] += ms
    by_file.pop("(idle)", None)
    by_fn.pop("(idle)", None)
    return dict(by_file), dict(by_fn)


def profile_load(context: Any, url: str, drawn: Any) -> Profile:
    """Load ``url`` in a new page of ``context``, waiting with ``drawn(page)``."""
    result = Profile()
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.add_init_script(_OBSERVER_JS)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 200})
    started = time.perf_counter()

    def ms() -> float:
        return (time.perf_counter() - started) * 1000

    def on_ws(ws: Any) -> None:
        if "_stcore/stream" not in ws.url:
            return
        result.ws_open_ms = ms()
        ws.on("framereceived", lambda payload: result.frames_in.append((ms(), len(payload))))
        ws.on("framesent", lambda payload: result.frames_out.append((ms(), len(payload))))

    page.on("websocket", on_ws)
    try:
        before = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        cdp.send("Profiler.start")
        started = time.perf_counter()
        page.goto(url)
        drawn(page)
        result.total_s = time.perf_counter() - started
        prof = cdp.send("Profiler.stop")["profile"]
        after = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        result.metrics = {k: after[k] - before.get(k, 0.0) for k in after}
        result.by_file_ms, result.by_function_ms = _self_times(prof)
        result.messages = _decode(page.evaluate("() => window.__pdhMessages || []"))
        result.marks_ms = {k: float(v) for k, v in
                           (page.evaluate("() => window.__pdhMarks || {}") or {}).items()}
    finally:
        page.close()
    return result
