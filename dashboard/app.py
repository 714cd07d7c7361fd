"""Streamlit entry point: ``streamlit run dashboard/app.py`` (the hub's supervisor runs it).

The page itself lives in :mod:`dashboard.page`; this file stays tiny so Streamlit's
script runner has nothing to re-execute but the call.
"""

from dashboard.page import main

main()
