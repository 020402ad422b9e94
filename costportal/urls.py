"""Root URLs: API v1, its schema and docs, the admin, health probes."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.common import views as common_views

api_v1 = [
    path("", include("apps.usage.api.urls")),
    path("", include("apps.tenancy.api.urls")),
    path("", include("apps.pricing.api.urls")),
    path("", include("apps.exports.api.urls")),
    path("", include("apps.billing.api.urls")),
    path("", include("apps.budgets.api.urls")),
    path("", include("apps.integrations.api.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    re_path(r"^healthz/?$", common_views.healthz, name="healthz"),
    re_path(r"^readyz/?$", common_views.readyz, name="readyz"),
    path("", include("apps.dashboard.urls")),
]
