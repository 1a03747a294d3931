from coreadmin.panels import NavItem

NAV = [NavItem("API keys", "accounts:keys", order=90)]
