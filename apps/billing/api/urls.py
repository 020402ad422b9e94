from django.urls import re_path

from apps.billing.api import views

urlpatterns = [
    re_path(r"^invoices/?$", views.InvoiceListView.as_view(), name="invoice-list"),
    re_path(r"^invoices/(?P<pk>\d+)/?$", views.InvoiceDetailView.as_view(), name="invoice-detail"),
    re_path(r"^invoices/(?P<pk>\d+)/lines\.csv/?$", views.InvoiceLinesCsvView.as_view(), name="invoice-csv"),
    re_path(
        r"^invoices/(?P<pk>\d+)/approve/?$",
        views.InvoiceActionView.as_view(action_name="approve"),
        name="invoice-approve",
    ),
    re_path(
        r"^invoices/(?P<pk>\d+)/issue/?$", views.InvoiceActionView.as_view(action_name="issue"), name="invoice-issue"
    ),
    re_path(r"^invoices/(?P<pk>\d+)/void/?$", views.InvoiceVoidView.as_view(), name="invoice-void"),
    re_path(
        r"^invoices/(?P<pk>\d+)/chargebacks/resend/?$", views.ChargebackResendView.as_view(), name="invoice-resend"
    ),
]
