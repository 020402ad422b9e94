from django.urls import re_path

from apps.tenancy.api import views

urlpatterns = [
    re_path(r"^cost-centers/?$", views.CostCenterListView.as_view(), name="cost-center-list"),
    re_path(
        r"^cost-centers/(?P<code>[A-Za-z0-9_.:-]+)/?$", views.CostCenterDetailView.as_view(), name="cost-center-detail"
    ),
]
