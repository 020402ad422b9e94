from django.urls import re_path

from apps.integrations.api import views

urlpatterns = [
    re_path(r"^reconciliation/imports/?$", views.ReconciliationImportListView.as_view(), name="reconciliation-list"),
    re_path(
        r"^reconciliation/imports/(?P<pk>\d+)/?$",
        views.ReconciliationDetailView.as_view(),
        name="reconciliation-detail",
    ),
]
