from django.urls import re_path

from apps.pricing.api import views

urlpatterns = [
    re_path(r"^price-lists/?$", views.PriceListListView.as_view(), name="price-list-list"),
    re_path(r"^price-lists/(?P<pk>\d+)/?$", views.PriceListDetailView.as_view(), name="price-list-detail"),
    re_path(r"^price-lists/(?P<pk>\d+)/prices/?$", views.PriceListPricesView.as_view(), name="price-list-prices"),
]
