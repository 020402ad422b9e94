"""Shapes of price lists and prices; unit prices are per 1M tokens, as strings."""

from rest_framework import serializers

from apps.pricing.models import PRICE_FIELDS, ModelPrice, PriceList


class PriceListSerializer(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField()
    prices = serializers.IntegerField(source="price_count", read_only=True)

    class Meta:
        model = PriceList
        fields = ("id", "name", "description", "scope", "prices", "created_at")

    def get_scope(self, obj) -> str:
        return "global" if obj.is_global else "organization"


class ModelPriceSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelPrice
        fields = (
            "id",
            "provider",
            "model",
            "match_pattern",
            "currency",
            *PRICE_FIELDS,
            "effective_from",
            "effective_to",
            "source",
        )
