"""Django's admin app, installed with the organization-scoped back-office site as its default site."""

from django.contrib.admin.apps import AdminConfig


class BackofficeAdminConfig(AdminConfig):
    default_site = "apps.tenancy.backoffice.BackofficeSite"
