"""URLs for error-format tests: views that fail the ways real code can."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class Boom(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("unexpected failure with patient name Jane Roe")


def django_boom(request):
    raise RuntimeError("plain Django view failure")


class Echo(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        return Response(request.data)


urlpatterns = [
    path("api/v1/boom", Boom.as_view()),
    path("api/v1/django-boom", django_boom),
    path("api/v1/echo", Echo.as_view()),
    path("", include("config.urls")),
]
