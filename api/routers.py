from rest_framework.routers import SimpleRouter

# A UUID in a URL path (with or without dashes), for hand-written nested routes.
UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class OptionalSlashRouter(SimpleRouter):
    """Routes that answer with or without a trailing slash (design §5)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
