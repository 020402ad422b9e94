"""Budgets, their alerts and change requests, and the gateway's check."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from apps.budgets.api.serializers import (
    AlertSerializer,
    BudgetSerializer,
    BudgetStatusSerializer,
    BudgetWriteSerializer,
    ChangeRequestSerializer,
    ChangeRequestWriteSerializer,
    DecisionSerializer,
)
from apps.budgets.models import Alert, Budget, BudgetChangeRequest
from apps.budgets.selectors import budget_check, budget_status
from apps.budgets.services import (
    budget_create,
    budget_request_cancel,
    budget_request_change,
    budget_request_decide,
)
from apps.tenancy.api.base import OrganizationAPIView, OrganizationGenericAPIView
from apps.tenancy.models import CostCenter, Role


class VisibleBudgetsMixin:
    def scope_queryset(self, queryset):
        visible = self.visible_cost_center_ids()
        if visible is not None:
            queryset = queryset.filter(**{f"{self.cost_center_path}__in": visible})
        return queryset

    cost_center_path = "cost_center_id"


class BudgetListView(VisibleBudgetsMixin, OrganizationGenericAPIView):
    tenant_model = Budget
    serializer_class = BudgetSerializer

    @extend_schema(operation_id="budgets_list", responses=BudgetSerializer(many=True))
    def get(self, request):
        budgets = self.get_queryset().select_related("cost_center", "organization")
        rows = []
        for budget in budgets:
            item = BudgetSerializer(budget).data
            item["status"] = BudgetStatusSerializer(budget_status(budget=budget)).data if budget.active else None
            rows.append(item)
        return Response({"results": rows})

    @extend_schema(request=BudgetWriteSerializer, responses={201: BudgetSerializer})
    def post(self, request):
        payload = BudgetWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        code = data.pop("cost_center", None)
        cost_center = None
        if code:
            cost_center = CostCenter.objects.for_org(self.organization).filter(code=code).first()
            if cost_center is None:
                raise exceptions.ValidationError({"cost_center": [f"Unknown cost center {code!r}."]})
        budget = budget_create(organization=self.organization, cost_center=cost_center, actor=request.user, **data)
        return Response(BudgetSerializer(budget).data, status=status.HTTP_201_CREATED)


class BudgetDetailView(VisibleBudgetsMixin, OrganizationGenericAPIView):
    tenant_model = Budget
    serializer_class = BudgetSerializer

    @extend_schema(operation_id="budgets_detail", responses=BudgetSerializer)
    def get(self, request, pk):
        budget = self.get_object()
        data = BudgetSerializer(budget).data
        data["status"] = BudgetStatusSerializer(budget_status(budget=budget)).data
        return Response(data)


class BudgetCheckView(OrganizationAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("cost_center", OpenApiTypes.STR, required=True)],
        responses={200: OpenApiTypes.OBJECT},
        description="May this cost center spend more? `allowed` is false once a hard budget over it is exhausted.",
    )
    def get(self, request):
        code = request.query_params.get("cost_center")
        if not code:
            raise exceptions.ValidationError({"cost_center": ["This parameter is required."]})
        cost_center = CostCenter.objects.for_org(self.organization).select_related("parent").filter(code=code).first()
        visible = self.visible_cost_center_ids()
        if cost_center is None or (visible is not None and cost_center.pk not in visible):
            raise exceptions.NotFound(f"No cost center {code!r}.")
        check = budget_check(organization=self.organization, cost_center=cost_center)
        binding = check.binding
        return Response(
            {
                "cost_center": check.cost_center,
                "allowed": check.allowed,
                "currency": self.organization.billing_currency,
                "spent": f"{binding.spent:.4f}" if binding else None,
                "limit": f"{binding.limit:.4f}" if binding else None,
                "remaining": f"{binding.remaining:.4f}" if binding else None,
                "budgets": BudgetStatusSerializer(check.statuses, many=True).data,
            }
        )


class AlertListView(VisibleBudgetsMixin, OrganizationGenericAPIView):
    tenant_model = Alert
    serializer_class = AlertSerializer
    cost_center_path = "budget__cost_center_id"

    def get(self, request):
        alerts = self.get_queryset().select_related("budget__cost_center")[:500]
        return Response({"results": AlertSerializer(alerts, many=True).data})


class BudgetChangeRequestListView(OrganizationGenericAPIView):
    """Owners ask for changes of their budgets; finance and admins see every request."""

    tenant_model = BudgetChangeRequest
    serializer_class = ChangeRequestSerializer
    write_roles = (Role.ADMIN, Role.FINANCE, Role.OWNER)

    def scope_queryset(self, queryset):
        visible = self.visible_cost_center_ids()
        queryset = queryset.select_related("requested_by", "decided_by").prefetch_related("transitions")
        if "budget_pk" in self.kwargs:
            queryset = queryset.filter(budget_id=self.kwargs["budget_pk"])
        return queryset if visible is None else queryset.filter(budget__cost_center_id__in=visible)

    def get(self, request, budget_pk=None):
        if budget_pk is not None:
            self._budget(budget_pk)
        return Response({"results": ChangeRequestSerializer(self.get_queryset(), many=True).data})

    def _budget(self, budget_pk) -> Budget:
        budget = Budget.objects.for_org(self.organization).filter(pk=budget_pk).first()
        visible = self.visible_cost_center_ids()
        if budget is None or (visible is not None and budget.cost_center_id not in visible):
            raise exceptions.NotFound("No such budget.")
        return budget

    @extend_schema(request=ChangeRequestWriteSerializer, responses={201: ChangeRequestSerializer})
    def post(self, request, budget_pk=None):
        if budget_pk is None:
            raise exceptions.MethodNotAllowed("POST", "Ask at /api/v1/budgets/<id>/change-requests.")
        budget = self._budget(budget_pk)
        payload = ChangeRequestWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        change = budget_request_change(budget=budget, user=request.user, **payload.validated_data)
        return Response(ChangeRequestSerializer(change).data, status=status.HTTP_201_CREATED)


class BudgetChangeRequestActionView(OrganizationGenericAPIView):
    tenant_model = BudgetChangeRequest
    serializer_class = ChangeRequestSerializer
    write_roles = (Role.ADMIN, Role.FINANCE, Role.OWNER)
    action_name = ""

    @extend_schema(request=DecisionSerializer, responses=ChangeRequestSerializer)
    def post(self, request, pk):
        change = self.get_object()
        visible = self.visible_cost_center_ids()
        if visible is not None and change.budget.cost_center_id not in visible:
            raise exceptions.NotFound("No such request.")
        payload = DecisionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if self.action_name == "cancel":
            change = budget_request_cancel(request=change, user=request.user, note=payload.validated_data["note"])
        else:
            change = budget_request_decide(
                request=change,
                user=request.user,
                approve=self.action_name == "approve",
                note=payload.validated_data["note"],
            )
        return Response(ChangeRequestSerializer(BudgetChangeRequest.objects.get(pk=change.pk)).data)
