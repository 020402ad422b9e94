from django.urls import re_path

from apps.exports.api import views

urlpatterns = [
    re_path(r"^exports/erp\.csv/?$", views.ErpExportView.as_view(), name="export-erp"),
    re_path(r"^exports/focus\.csv/?$", views.FocusExportView.as_view(), name="export-focus"),
]
