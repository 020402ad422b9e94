"""Cost centers: every member reads; admins and finance create, change and deactivate."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.tenancy.api.base import OrganizationGenericAPIView
from apps.tenancy.api.serializers import CostCenterSerializer, CostCenterWriteSerializer
from apps.tenancy.models import CostCenter
from apps.tenancy.services import cost_center_create, cost_center_deactivate, cost_center_update


class CostCenterMixin:
    tenant_model = CostCenter
    serializer_class = CostCenterSerializer

    def scope_queryset(self, queryset):
        visible = self.visible_cost_center_ids()
        queryset = queryset.select_related("parent")
        return queryset if visible is None else queryset.filter(id__in=visible)

    def parent_from(self, code):
        if code is None:
            return None
        parent = CostCenter.objects.for_org(self.organization).filter(code=code).first()
        if parent is None:
            raise serializers.ValidationError({"parent": [f"Unknown cost center {code!r}."]})
        return parent


class CostCenterListView(CostCenterMixin, OrganizationGenericAPIView):
    @extend_schema(responses=CostCenterSerializer(many=True))
    def get(self, request):
        return Response(self.get_serializer(self.get_queryset(), many=True).data)

    @extend_schema(request=CostCenterWriteSerializer, responses={201: CostCenterSerializer})
    def post(self, request):
        payload = CostCenterWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if CostCenter.objects.for_org(self.organization).filter(code=data["code"]).exists():
            raise serializers.ValidationError({"code": [f"A cost center {data['code']!r} already exists."]})
        cost_center = cost_center_create(
            organization=self.organization,
            code=data["code"],
            name=data["name"],
            parent=self.parent_from(data.get("parent")),
            active=data.get("active", True),
        )
        return Response(CostCenterSerializer(cost_center).data, status=status.HTTP_201_CREATED)


class CostCenterDetailView(CostCenterMixin, OrganizationGenericAPIView):
    lookup_field = "code"

    def get(self, request, code):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=CostCenterWriteSerializer(partial=True), responses=CostCenterSerializer)
    def patch(self, request, code):
        cost_center = self.get_object()
        payload = CostCenterWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        fields = dict(payload.validated_data)
        if "parent" in fields:
            fields["parent"] = self.parent_from(fields["parent"])
        if "code" in fields and fields["code"] != cost_center.code:
            if CostCenter.objects.for_org(self.organization).filter(code=fields["code"]).exists():
                raise serializers.ValidationError({"code": [f"A cost center {fields['code']!r} already exists."]})
        try:
            cost_center = cost_center_update(cost_center=cost_center, **fields)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return Response(CostCenterSerializer(cost_center).data)

    @extend_schema(description="Deactivates the cost center; its usage and invoices keep it.", responses={204: None})
    def delete(self, request, code):
        cost_center_deactivate(cost_center=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
