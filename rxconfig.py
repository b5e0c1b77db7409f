import reflex as rx

from billing_app.settings import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="billing_app",
    show_built_with_reflex=False,
    telemetry_enabled=False,
    # One port serves pages, API routes and the websocket (`reflex run --env prod`).
    frontend_port=_settings.billing_port,
    backend_port=_settings.billing_port,
    api_url=_settings.public_url,
    deploy_url=_settings.public_url,
    redis_url=_settings.reflex_redis_url,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(accent_color="indigo", gray_color="slate", radius="medium", scaling="100%"),
        ),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
