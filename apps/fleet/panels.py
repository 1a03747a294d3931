from apps.fleet.selectors import fleet_summary
from coreadmin.panels import NavItem, Tile

NAV = [NavItem("Fleet", "fleet:fleet", order=80)]
TILES = [
    Tile(
        "fleet",
        "Live scraper instances",
        "fleet/_tile.html",
        fleet_summary,
        url_name="fleet:fleet",
        order=80,
        refresh_seconds=15,
    )
]
