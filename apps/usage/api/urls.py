from django.urls import re_path

from apps.usage.api import views

urlpatterns = [
    re_path(r"^usage/?$", views.UsageView.as_view(), name="usage"),
    re_path(r"^costs/?$", views.CostSummaryView.as_view(), name="costs"),
]
