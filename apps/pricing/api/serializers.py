"""Shapes of price lists and prices; unit prices are per 1M tokens, as strings."""

from rest_framework import serializers

from apps.pricing.models import ModelPrice, PriceList


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
            "input_price",
            "cached_input_price",
            "cache_write_price",
            "output_price",
            "long_context_threshold",
            "long_input_price",
            "long_cached_input_price",
            "long_cache_write_price",
            "long_output_price",
            "effective_from",
            "effective_to",
            "source",
        )
