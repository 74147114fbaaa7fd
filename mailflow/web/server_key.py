"""Where the web handlers find the App: aiohttp's typed application key."""

from __future__ import annotations

from aiohttp import web

from mailflow.app import App

APP_KEY = web.AppKey("mailflow", App)
