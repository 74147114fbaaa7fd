"""The daemon's HTTP side: approval pages, the help centre and /healthz (aiohttp)."""
