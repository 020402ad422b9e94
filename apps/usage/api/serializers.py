"""Shapes of usage in the API. The ingest serializers only document the record; validation is in normalize."""

from rest_framework import serializers

from apps.usage.models import UsageRecord


class UsageRecordSerializer(serializers.ModelSerializer):
    cost_center = serializers.SlugRelatedField(slug_field="code", read_only=True)
    cost = serializers.DecimalField(
        source="billing_cost",
        max_digits=30,
        decimal_places=10,
        read_only=True,
        help_text="In the organization's billing currency; null until priced.",
    )
    currency = serializers.SerializerMethodField()
    price_currency_cost = serializers.DecimalField(source="cost", max_digits=30, decimal_places=12, read_only=True)

    class Meta:
        model = UsageRecord
        fields = (
            "id",
            "request_id",
            "timestamp",
            "received_at",
            "provider",
            "model",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "cost_center",
            "unknown_cost_center",
            "user_id",
            "session_id",
            "feature",
            "feature_flag",
            "environment",
            "tags",
            "latency_ms",
            "status",
            "pricing_status",
            "cost",
            "currency",
            "price_currency_cost",
            "cost_currency",
            "fx_rate",
            "reported_cost",
            "reported_currency",
        )

    def get_currency(self, obj) -> str:
        return self.context["currency"]


class UsageRecordInSerializer(serializers.Serializer):
    """One usage record as POSTed; `{"records": [...]}` sends up to 5,000 at once."""

    request_id = serializers.CharField(max_length=128, help_text="Idempotency key within the organization.")
    timestamp = serializers.DateTimeField(required=False, help_text="RFC 3339 with offset; default: time of receipt.")
    model = serializers.CharField(max_length=200)
    provider = serializers.CharField(max_length=64, required=False)
    input_tokens = serializers.IntegerField(
        min_value=0, required=False, help_text="All input, including cache reads and writes."
    )
    output_tokens = serializers.IntegerField(min_value=0, required=False, help_text="All output, including reasoning.")
    cache_read_tokens = serializers.IntegerField(min_value=0, required=False)
    cache_write_tokens = serializers.IntegerField(min_value=0, required=False)
    reasoning_tokens = serializers.IntegerField(min_value=0, required=False)
    usage = serializers.DictField(
        required=False,
        help_text="Instead of the token fields: the provider's usage object (OpenAI, Anthropic or Gemini shape).",
    )
    cost_center = serializers.CharField(max_length=64, required=False)
    user_id = serializers.CharField(max_length=256, required=False)
    session_id = serializers.CharField(max_length=256, required=False)
    feature = serializers.CharField(max_length=256, required=False)
    feature_flag = serializers.CharField(max_length=256, required=False)
    environment = serializers.CharField(max_length=64, required=False)
    tags = serializers.DictField(child=serializers.CharField(max_length=256), required=False)
    latency_ms = serializers.IntegerField(min_value=0, required=False)
    status = serializers.CharField(max_length=32, required=False)
    reported_cost = serializers.DecimalField(max_digits=30, decimal_places=12, required=False)
    reported_currency = serializers.CharField(max_length=3, required=False)


class UsageBatchInSerializer(serializers.Serializer):
    records = UsageRecordInSerializer(many=True)


class RecordErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    request_id = serializers.CharField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = RecordErrorSerializer(many=True)


class CostTotalsSerializer(serializers.Serializer):
    cost = serializers.CharField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    requests = serializers.IntegerField()


class CostSummarySerializer(serializers.Serializer):
    currency = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    group_by = serializers.ListField(child=serializers.CharField())
    results = serializers.ListField(child=serializers.DictField())
    total = CostTotalsSerializer()
    unpriced_requests = serializers.IntegerField()
    unconverted_requests = serializers.IntegerField()
