"""Request guards that apply to every page, API and console alike (DESIGN §16)."""

from django.http import HttpResponse, JsonResponse

NUL = "\x00"


class RejectNulBytesMiddleware:
    """A NUL character in the path, the query string or a form field is a 400.

    No text column can store it (PostgreSQL refuses it in any string), so it is
    refused at the door instead of failing deep inside a query. JSON bodies and
    multipart uploads are validated by their parsers and fields (DRF's string
    fields refuse NUL); reading a multipart body here would also bypass the
    upload's streaming handlers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._has_nul(request):
            detail = "The request contains a NUL character."
            if request.path.startswith("/api/"):
                return JsonResponse({"code": "invalid", "detail": detail}, status=400)
            return HttpResponse(detail, status=400, content_type="text/plain")
        return self.get_response(request)

    @staticmethod
    def _has_nul(request) -> bool:
        if NUL in request.path:
            return True
        if any(NUL in key or NUL in value for key, value in _pairs(request.GET)):
            return True
        form = request.content_type == "application/x-www-form-urlencoded"
        return form and any(NUL in key or NUL in value for key, value in _pairs(request.POST))


def _pairs(querydict):
    for key, values in querydict.lists():
        for value in values:
            yield key, value
