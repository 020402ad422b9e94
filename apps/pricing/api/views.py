"""Price lists an organization can see: its own negotiated lists and the global ones (read-only)."""

import django_filters
from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from apps.pricing.api.serializers import ModelPriceSerializer, PriceListSerializer
from apps.pricing.selectors import model_prices_visible, price_lists_visible
from apps.tenancy.api.base import OrganizationAPIView, OrganizationScopedMixin


class PriceListListView(OrganizationAPIView):
    @extend_schema(responses=PriceListSerializer(many=True))
    def get(self, request):
        lists = price_lists_visible(organization=self.organization).annotate(price_count=Count("prices"))
        return Response(PriceListSerializer(lists, many=True).data)


class PriceListDetailView(OrganizationAPIView):
    @extend_schema(responses=PriceListSerializer)
    def get(self, request, pk):
        lists = price_lists_visible(organization=self.organization).annotate(price_count=Count("prices"))
        return Response(PriceListSerializer(generics.get_object_or_404(lists, pk=pk)).data)


class PriceFilter(django_filters.FilterSet):
    model = django_filters.CharFilter()
    provider = django_filters.CharFilter()
    search = django_filters.CharFilter(field_name="model", lookup_expr="icontains")


class PricePagination(CursorPagination):
    ordering = ("model", "provider", "-effective_from", "id")
    page_size = 200


class PriceListPricesView(OrganizationScopedMixin, generics.ListAPIView):
    serializer_class = ModelPriceSerializer
    filterset_class = PriceFilter
    pagination_class = PricePagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return model_prices_visible(organization=None).none()
        price_list = generics.get_object_or_404(
            price_lists_visible(organization=self.organization), pk=self.kwargs["pk"]
        )
        return model_prices_visible(organization=self.organization).filter(price_list=price_list)
