"""The custom function `aivoco demo` exposes, loaded exactly like a user's
`--functions FILE`, so the demo shows a function round trip with the emulator."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_ZONES = {
    "paris": "Europe/Paris",
    "london": "Europe/London",
    "berlin": "Europe/Berlin",
    "new york": "America/New_York",
    "san francisco": "America/Los_Angeles",
    "tokyo": "Asia/Tokyo",
    "bangalore": "Asia/Kolkata",
    "sydney": "Australia/Sydney",
}


def local_time(city: str) -> dict[str, str]:
    """The current local time in a city.

    Args:
        city: a city such as Paris, London, New York, Tokyo or Sydney
    """
    zone_name = _ZONES.get(city.strip().casefold())
    if zone_name is None:
        raise ValueError(f"unknown city {city!r}; known: {', '.join(sorted(_ZONES))}")
    try:
        zone: timezone | ZoneInfo = ZoneInfo(zone_name)
    except ZoneInfoNotFoundError:  # no tz database on this system
        zone, zone_name = timezone.utc, "UTC"
    now = datetime.now(zone)
    return {"city": city, "time_zone": zone_name, "local_time": now.strftime("%H:%M")}
