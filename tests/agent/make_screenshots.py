"""Screenshots of the tray icon in each state and of its menu, for the README:
``python tests/agent/make_screenshots.py`` writes ``docs/screenshots/tray-*.png``.

It drives the real agent (pystray gtk backend) on a private Xvfb desktop with trayer,
exactly as tests/agent/test_xdesktop.py does. Not a test: run it by hand after changing
the icon art or the menu.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from core.state import HubState  # noqa: E402
from tests.agent.desktop import Desktop  # noqa: E402
from tests.conftest import make_db, wait_for  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
ZOOM = 4


def save_icon(desktop: Desktop, name: str) -> None:
    shot = desktop.screenshot().crop((0, 0, 36, 32))
    shot.resize((36 * ZOOM, 32 * ZOOM), Image.Resampling.NEAREST).save(OUT / name)
    print("wrote", OUT / name)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pdh-shots-") as tmp:
        work = Path(tmp)
        db = make_db(work / "data" / "production_analysis.db")
        spare = make_db(work / "spare.db", seed=2)
        config = work / "pdh.toml"
        config.write_text(
            f'[database]\npath = "{db}"\n[watch]\nsettle_interval = 1.5\nsettle_checks = 2\n'
            f'[api]\nenabled = false\n[dashboard]\nenabled = false\n[ui]\nlanguage = "en"\n'
            f'[log]\ndir = "{work / "logs"}"\n[state]\ndir = "{work / "state"}"\n')
        with Desktop(work / "desktop") as d:
            agent = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", "--config", str(config)], cwd=work,
                env=dict(d.env, PYSTRAY_BACKEND="gtk"), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            try:
                d.wait_tray_state(HubState.HEALTHY, timeout=30)
                save_icon(d, "tray-healthy.png")
                shutil.copyfile(spare, db)  # an ERP export: blue while it settles
                d.wait_tray_state(HubState.WORKING)
                save_icon(d, "tray-working.png")
                d.wait_tray_state(HubState.HEALTHY)
                db.unlink()
                d.wait_tray_state(HubState.ERROR)
                save_icon(d, "tray-error.png")
                shutil.copyfile(spare, db)
                d.wait_tray_state(HubState.HEALTHY)

                d.xdotool("mousemove", "16", "16", "click", "3")
                wait_for(lambda: d.xdotool("search", "--onlyvisible", "--name",
                                           "__main__.py").strip(), message="menu")
                time.sleep(0.5)  # let it draw
                d.screenshot().crop((0, 0, 290, 275)).save(OUT / "tray-menu.png")
                print("wrote", OUT / "tray-menu.png")
                d.xdotool("key", "--delay", "100", "Down", "Down", "Return")  # Auto Mode off
                d.wait_tray_state(HubState.PAUSED)
                save_icon(d, "tray-paused.png")
                make_db(work / "newer.db", seed=3)
                shutil.copyfile(work / "newer.db", db)  # an update waits for auto mode
                d.wait_tray_state(HubState.DEGRADED)
                save_icon(d, "tray-degraded.png")
            finally:
                agent.terminate()
                agent.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
