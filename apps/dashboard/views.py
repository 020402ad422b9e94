"""Dashboard pages: the organization's costs, its CSV, and the usage behind a cost center."""

import csv

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from apps.dashboard.charts import legend, stacked_bars
from apps.dashboard.selectors import PRESETS, STACKS, dashboard_build, range_params
from apps.tenancy.models import CostCenter, Organization
from apps.tenancy.selectors import membership_get, membership_visible_cost_center_ids
from apps.usage.filters import UsageFilter
from apps.usage.models import UsageRecord


def _organization_for(request, slug):
    """The organization if the user is a member (or the operator); 404 otherwise, whether it exists or not."""
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        raise Http404("No such organization.")
    membership = membership_get(organization=organization, user=request.user)
    if membership is None and not request.user.is_superuser:
        raise Http404("No such organization.")
    return organization, membership_visible_cost_center_ids(membership=membership)


@login_required
def home(request):
    membership = request.user.memberships.select_related("organization").order_by("organization__slug").first()
    if membership is not None:
        return redirect("dashboard", slug=membership.organization.slug)
    first = Organization.objects.first() if request.user.is_superuser else None
    if first is None:
        raise Http404("You are not a member of any organization.")
    return redirect("dashboard", slug=first.slug)


@login_required
def dashboard(request, slug):
    organization, visible = _organization_for(request, slug)
    board = dashboard_build(organization=organization, params=request.GET, visible_cost_center_ids=visible)
    cost_centers = CostCenter.objects.for_org(organization).order_by("code")
    if visible is not None:
        cost_centers = cost_centers.filter(pk__in=visible)
    my_organizations = (
        Organization.objects.all()
        if request.user.is_superuser
        else Organization.objects.filter(memberships__user=request.user)
    )
    params, _ = range_params(organization=organization, params=request.GET)
    context = {
        "organization": organization,
        "my_organizations": my_organizations,
        "board": board,
        "errors": board.filterset.errors,
        "params": params,
        "presets": PRESETS,
        "stacks": STACKS,
        "cost_centers": cost_centers,
        "chart": stacked_bars(days=board.days, series=board.series, currency=organization.billing_currency)
        if board.days
        else "",
        "legend": legend([name for name, _ in board.series]),
        "query": request.GET.urlencode(),
        "stack_query": _query_without(params, "stack"),
        "drill_url": reverse("dashboard-usage", args=[organization.slug]),
        "drill_query": _query_without(params, "cost_center"),
    }
    return render(request, "dashboard/dashboard.html", context, status=400 if board.filterset.errors else 200)


def _query_without(params, name: str) -> str:
    """The query string of the page without `name`, ending in & so that `name=...` can follow."""
    rest = params.copy()
    rest.pop(name, None)
    encoded = rest.urlencode()
    return f"{encoded}&" if encoded else ""


@login_required
def export_csv(request, slug):
    """Exactly what the dashboard shows for the same parameters: totals, days and every table."""
    organization, visible = _organization_for(request, slug)
    board = dashboard_build(organization=organization, params=request.GET, visible_cost_center_ids=visible)
    if board.filterset.errors:
        return HttpResponse(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in board.filterset.errors.items()),
            status=400,
            content_type="text/plain",
        )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    start, end = board.days[0], board.days[-1]
    response["Content-Disposition"] = f'attachment; filename="{organization.slug}-costs-{start}-{end}.csv"'
    writer = csv.writer(response)
    currency = organization.billing_currency
    writer.writerow(["section", "name", "cost", "currency", "input_tokens", "output_tokens", "requests", "share"])
    t = board.totals
    writer.writerow(
        ["total", "", f"{t['cost']:.10f}", currency, t["input_tokens"], t["output_tokens"], t["requests"], ""]
    )
    for name, values in board.series:
        for day in board.days:
            if day in values:
                writer.writerow(
                    [f"day:{board.stack}", f"{day.isoformat()} {name}", f"{values[day]:.10f}", currency, "", "", "", ""]
                )
    for section, rows, key in (
        ("cost_center", board.cost_centers, "cost_center"),
        ("model", board.models, "model"),
        ("user", board.users, "user_id"),
        ("feature", board.features, "feature"),
    ):
        for row in rows:
            writer.writerow(
                [
                    section,
                    row[key],
                    f"{row['cost']:.10f}",
                    currency,
                    row["input_tokens"],
                    row["output_tokens"],
                    row["requests"],
                    row.get("share", ""),
                ]
            )
    return response


@login_required
def usage_list(request, slug):
    """The usage records behind the dashboard's filters, newest first: the drill-down from a cost center."""
    organization, visible = _organization_for(request, slug)
    params, _ = range_params(organization=organization, params=request.GET)
    filterset = UsageFilter(
        params,
        queryset=UsageRecord.objects.for_org(organization).select_related("cost_center"),
        organization=organization,
        visible_cost_center_ids=visible,
    )
    page = None
    if filterset.is_valid():
        page = Paginator(filterset.qs.order_by("-timestamp", "-id"), 50).get_page(request.GET.get("page"))
    context = {
        "organization": organization,
        "page": page,
        "errors": filterset.errors,
        "params": params,
        "query": params.urlencode(),
    }
    return render(request, "dashboard/usage.html", context, status=400 if filterset.errors else 200)
