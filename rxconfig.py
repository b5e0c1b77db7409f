import reflex as rx

from billing_app.settings import get_settings_or_exit

# `reflex run` and each of its workers load this first: bad or (in production) unsafe
# settings stop them here, one line per setting.
_settings = get_settings_or_exit("billing-app")

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
    # The websocket (and CORS) accept the page's own origin only; a framing connector loads the
    # page from it too. Reflex's default "*" would let any site's pages send events.
    cors_allowed_origins=[_settings.public_url],
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(
                accent_color="indigo", gray_color="slate", radius="medium", scaling="100%"
            ),
        ),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
