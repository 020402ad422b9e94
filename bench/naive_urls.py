"""The product's URLs plus the naive baseline at /bench/naive/usage; mounted only by bench/settings.py."""

from django.urls import re_path

from bench.naive_api import NaiveUsageView
from costportal.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    *product_urlpatterns,
    re_path(r"^bench/naive/usage/?$", NaiveUsageView.as_view(), name="bench-naive-usage"),
]
