"""The local service (``sscard serve``): a native JSON API under ``/api/v1/``
with an event stream, the national reader interface as a WebSocket drop-in,
a service-owned PIN page and the kiosk page.  See docs/service.md."""
