"""The naive baseline of section 13: usage ingest as a straightforward DRF app would write it.

A `ModelSerializer` for UsageRecord with `many=True`, DRF's own JSON parser, `ListSerializer.create`
saving records one by one through `ModelSerializer.create` (one INSERT, and under Django's default
autocommit one commit, per record), a cost-center lookup per record through `SlugRelatedField`, and the
created records serialized back in the response, as `CreateModelMixin` does.

To keep the comparison about the ingest path and not about pricing, the baseline prices each record
with the product's own in-memory price book (loaded once per request), so it stores exactly the
priced rows the real endpoint stores. That makes it faster than a truly naive app that would query
the price of each record, so the ratio reported against it is conservative.

Bench only: mounted by bench/naive_urls.py, never by the product.
"""

from django.db import transaction
from django.utils import timezone
from rest_framework import generics, serializers

from apps.pricing.selectors import fx_table, price_book_for, pricing_revision
from apps.tenancy.models import ApiKey, CostCenter
from apps.usage.models import UsageRecord
from apps.usage.services import price_usage


class OrganizationCostCenterField(serializers.SlugRelatedField):
    def get_queryset(self):
        return CostCenter.objects.for_org(self.context["organization"]).filter(active=True)


class NaiveUsageRecordSerializer(serializers.ModelSerializer):
    cost_center = OrganizationCostCenterField(slug_field="code")

    class Meta:
        model = UsageRecord
        fields = (
            "id", "request_id", "timestamp", "provider", "model", "input_tokens", "output_tokens",
            "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_center", "user_id", "session_id",
            "feature", "feature_flag", "environment", "tags", "latency_ms", "status", "reported_cost",
            "reported_currency", "pricing_status", "cost", "cost_currency", "billing_cost",
        )
        read_only_fields = ("id", "pricing_status", "cost", "cost_currency", "billing_cost")

    def create(self, validated_data):
        organization = self.context["organization"]
        now = timezone.now()
        priced = price_usage(
            book=self.context["price_book"], fx=self.context["fx_table"], organization=organization,
            provider=validated_data.get("provider", ""), model=validated_data["model"],
            timestamp=validated_data["timestamp"], input_tokens=validated_data.get("input_tokens", 0),
            output_tokens=validated_data.get("output_tokens", 0),
            cache_read_tokens=validated_data.get("cache_read_tokens", 0),
            cache_write_tokens=validated_data.get("cache_write_tokens", 0),
        )
        validated_data.update(
            received_at=now, pricing_status=priced.status, price_id=priced.price_id, cost=priced.cost,
            cost_currency=priced.cost_currency, fx_rate=priced.fx_rate, billing_cost=priced.billing_cost,
            priced_at=now if priced.price_id else None,
        )
        return super().create(validated_data)


class NaiveUsageView(generics.ListCreateAPIView):
    """POST a JSON list of records (or one record); the same API key authentication and throttle as the product."""

    serializer_class = NaiveUsageRecordSerializer
    # Set per request (the naive-atomic variant wraps the whole batch in one transaction).
    atomic = False

    def get_queryset(self):
        return UsageRecord.objects.for_org(self.request.auth.organization)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if isinstance(self.request.auth, ApiKey):
            organization = self.request.auth.organization
            revision = pricing_revision()
            context.update(
                organization=organization, price_book=price_book_for(organization=organization, revision=revision),
                fx_table=fx_table(revision=revision),
            )
        return context

    def get_serializer(self, *args, **kwargs):
        if isinstance(kwargs.get("data"), list):
            kwargs["many"] = True
        return super().get_serializer(*args, **kwargs)

    def perform_create(self, serializer):
        serializer.save(organization=self.request.auth.organization, api_key=self.request.auth)

    def create(self, request, *args, **kwargs):
        if request.query_params.get("atomic") == "1":
            with transaction.atomic():
                return super().create(request, *args, **kwargs)
        return super().create(request, *args, **kwargs)
