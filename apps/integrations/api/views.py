"""Reconciliation: upload a provider's usage export, then read the variance against ingested usage."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from apps.integrations.models import ProviderUsageImport
from apps.integrations.reconciliation import provider_usage_import, reconciliation_variance
from apps.tenancy.api.base import OrganizationGenericAPIView

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class ImportSerializer(serializers.ModelSerializer):
    rows = serializers.IntegerField(source="lines.count", read_only=True)

    class Meta:
        model = ProviderUsageImport
        fields = ("id", "provider", "filename", "imported_by", "created_at", "rows")


class UploadSerializer(serializers.Serializer):
    provider = serializers.CharField(max_length=64)
    file = serializers.FileField()


def _money(value):
    return None if value is None else f"{value:.10f}"


class ReconciliationImportListView(OrganizationGenericAPIView):
    tenant_model = ProviderUsageImport
    serializer_class = ImportSerializer
    parser_classes = (MultiPartParser, FormParser)

    @extend_schema(operation_id="reconciliation_imports_list", responses=ImportSerializer(many=True))
    def get(self, request):
        return Response({"results": ImportSerializer(self.get_queryset(), many=True).data})

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: ImportSerializer})
    def post(self, request):
        payload = UploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        upload = payload.validated_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise exceptions.ValidationError({"file": [f"At most {MAX_UPLOAD_BYTES:,} bytes."]})
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise exceptions.ValidationError({"file": ["Expected a UTF-8 CSV file."]}) from None
        source = provider_usage_import(
            organization=self.organization,
            provider=payload.validated_data["provider"],
            filename=upload.name,
            text=text,
            actor=request.user,
        )
        return Response(ImportSerializer(source).data, status=status.HTTP_201_CREATED)


class ReconciliationDetailView(OrganizationGenericAPIView):
    tenant_model = ProviderUsageImport
    serializer_class = ImportSerializer

    @extend_schema(operation_id="reconciliation_imports_variance", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk):
        source = self.get_object()
        rows = reconciliation_variance(source=source)
        return Response(
            {
                **ImportSerializer(source).data,
                "variance": [
                    {
                        "day": r.day.isoformat(),
                        "model": r.model,
                        "currency": r.currency,
                        "provider": {
                            "input_tokens": r.provider_input_tokens,
                            "output_tokens": r.provider_output_tokens,
                            "cost": _money(r.provider_cost),
                        },
                        "ingested": {
                            "input_tokens": r.ingested_input_tokens,
                            "output_tokens": r.ingested_output_tokens,
                            "requests": r.ingested_requests,
                            "cost": _money(r.ingested_cost),
                        },
                        "token_variance": r.token_variance,
                        "cost_variance": _money(r.cost_variance),
                    }
                    for r in rows
                ],
            }
        )
