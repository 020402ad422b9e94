"""Shapes of budgets, alerts and change requests in the API."""

from rest_framework import serializers

from apps.budgets.models import Alert, Budget, BudgetChangeRequest, PeriodKind, RequestTransition


class BudgetSerializer(serializers.ModelSerializer):
    cost_center = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Budget
        fields = (
            "id",
            "cost_center",
            "period_kind",
            "amount",
            "thresholds",
            "forecast_threshold",
            "enforcement",
            "recipients",
            "webhook_url",
            "active",
            "created_at",
        )


class BudgetWriteSerializer(serializers.Serializer):
    cost_center = serializers.CharField(
        max_length=64, required=False, allow_null=True, help_text="Code; empty for the whole organization."
    )
    period_kind = serializers.ChoiceField(choices=PeriodKind.choices, default=PeriodKind.MONTH)
    amount = serializers.DecimalField(max_digits=20, decimal_places=4, min_value=0)
    thresholds = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=1000), required=False)
    forecast_threshold = serializers.IntegerField(min_value=1, max_value=1000, required=False, allow_null=True)
    enforcement = serializers.ChoiceField(choices=("soft", "hard"), default="soft")
    recipients = serializers.ListField(child=serializers.EmailField(), required=False)
    webhook_url = serializers.URLField(required=False, allow_blank=True)
    webhook_secret = serializers.CharField(max_length=128, required=False, allow_blank=True, write_only=True)


class BudgetStatusSerializer(serializers.Serializer):
    budget_id = serializers.IntegerField(source="budget.pk")
    scope = serializers.SerializerMethodField()
    enforcement = serializers.CharField(source="budget.enforcement")
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    currency = serializers.CharField()
    spent = serializers.DecimalField(max_digits=30, decimal_places=4)
    limit = serializers.DecimalField(max_digits=30, decimal_places=4)
    remaining = serializers.DecimalField(max_digits=30, decimal_places=4)
    forecast = serializers.DecimalField(max_digits=30, decimal_places=4)
    exhausted = serializers.BooleanField()

    def get_scope(self, status) -> str:
        return status.budget.cost_center.code if status.budget.cost_center_id else "organization"


class AlertSerializer(serializers.ModelSerializer):
    cost_center = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = (
            "id",
            "budget",
            "cost_center",
            "period_start",
            "kind",
            "threshold",
            "spent",
            "limit",
            "forecast",
            "created_at",
        )

    def get_cost_center(self, alert) -> str | None:
        return alert.budget.cost_center.code if alert.budget.cost_center_id else None


class RequestTransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RequestTransition
        fields = ("from_state", "to_state", "actor_label", "note", "at")


class ChangeRequestSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)
    transitions = RequestTransitionSerializer(many=True, read_only=True)

    class Meta:
        model = BudgetChangeRequest
        fields = (
            "id",
            "budget",
            "amount",
            "until",
            "reason",
            "state",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_note",
            "created_at",
            "transitions",
        )


class ChangeRequestWriteSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=20, decimal_places=4, min_value=0)
    until = serializers.DateField(required=False, allow_null=True, help_text="Empty: a permanent change.")
    reason = serializers.CharField(max_length=2000)


class DecisionSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
