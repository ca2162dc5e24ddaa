"""Data files shipped with the server: the sample registry of Hanoi's sites.

`HANOI_SITES` is a sites file (see `fleet_server.sites_csv`) shaped like Hanoi:
12 branches, 30 reception points, 126 commune/ward points and 476
online-service agencies, with invented but plausible names. The demo and the
benchmarks import it; `make_hanoi_sites.py` beside it writes it.
"""

from pathlib import Path

HANOI_SITES = Path(__file__).with_name("hanoi-sites.csv")
