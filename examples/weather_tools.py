"""Custom functions for examples/sts-smoke.yaml (loaded like `aivoco sts --functions`)."""

from __future__ import annotations

_WEATHER = {"paris": ("sunny", 18.5), "oslo": ("rain", 4.0), "cairo": ("sunny", 31.0)}


def get_weather(city: str) -> dict[str, object]:
    """Current weather for a city.

    Args:
        city: the city name, for example Paris
    """
    sky, celsius = _WEATHER.get(city.strip().casefold(), ("cloudy", 15.0))
    return {"city": city, "sky": sky, "temperature_c": celsius}
