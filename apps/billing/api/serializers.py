"""Shapes of invoices in the API: money as strings in the invoice currency."""

from rest_framework import serializers

from apps.billing.models import Invoice, InvoiceLine, InvoiceTransition


class InvoiceLineSerializer(serializers.ModelSerializer):
    cost_center = serializers.SlugRelatedField(slug_field="code", read_only=True)
    usage_period = serializers.DateField(format="%Y-%m")

    class Meta:
        model = InvoiceLine
        fields = (
            "id",
            "kind",
            "usage_period",
            "cost_center",
            "provider",
            "model",
            "input_tokens",
            "output_tokens",
            "requests",
            "amount",
            "exact_amount",
        )


class InvoiceTransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceTransition
        fields = ("from_state", "to_state", "actor_label", "reason", "at")


class InvoiceSerializer(serializers.ModelSerializer):
    number = serializers.CharField(read_only=True)
    period = serializers.DateField(format="%Y-%m")
    lines = serializers.SerializerMethodField()
    subtotals = serializers.SerializerMethodField()
    transitions = InvoiceTransitionSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = (
            "id",
            "number",
            "period",
            "state",
            "currency",
            "usage_total",
            "adjustments_total",
            "total",
            "unpriced_requests",
            "unconverted_requests",
            "closed_at",
            "cutoff_at",
            "approved_at",
            "issued_at",
            "void_reason",
            "lines",
            "subtotals",
            "transitions",
        )

    def _visible_lines(self, invoice):
        return invoice.lines.select_related("cost_center")

    def get_lines(self, invoice) -> list[dict]:
        return InvoiceLineSerializer(self._visible_lines(invoice), many=True).data

    def get_subtotals(self, invoice) -> list[dict]:
        totals: dict[str, dict] = {}
        for line in self._visible_lines(invoice):
            item = totals.setdefault(
                line.cost_center.code, {"cost_center": line.cost_center.code, "amount": 0, "requests": 0}
            )
            item["amount"] += line.amount
            item["requests"] += line.requests
        return [{**v, "amount": str(v["amount"])} for _, v in sorted(totals.items())]


class VoidSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class ResendSerializer(serializers.Serializer):
    cost_center = serializers.CharField(max_length=64)
