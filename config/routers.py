from rest_framework.routers import SimpleRouter


class OptionalSlashRouter(SimpleRouter):
    """Routes that answer with or without a trailing slash (DESIGN §5)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
