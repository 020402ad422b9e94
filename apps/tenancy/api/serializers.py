"""Shapes of cost centers in the API; the services decide what is allowed."""

from rest_framework import serializers

from apps.tenancy.models import CostCenter


class CostCenterSerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = CostCenter
        fields = ("code", "name", "parent", "active", "created_at")


class CostCenterWriteSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    parent = serializers.CharField(max_length=64, required=False, allow_null=True)
    active = serializers.BooleanField(required=False, default=True)
