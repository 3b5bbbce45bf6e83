"""The web viewer: `netwarden dash`, Dash/plotly charts and a JSON API over the store."""
