"""Back office for price lists, prices (with the re-rating diff before apply) and FX rates."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.urls import path, reverse

from apps.pricing.importers import PriceEntry
from apps.pricing.models import PRICE_FIELDS, FxRate, ModelPrice, PriceList
from apps.pricing.services import model_price_set
from apps.tenancy.backoffice import TenantAdmin, current_organization
from apps.tenancy.models import Role

FINANCE = (Role.ADMIN, Role.FINANCE)


class ModelPriceInline(admin.TabularInline):
    model = ModelPrice
    fields = (
        "provider",
        "model",
        "match_pattern",
        "currency",
        "input_price",
        "cached_input_price",
        "cache_write_price",
        "output_price",
        "long_context_threshold",
        "effective_from",
        "effective_to",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = True
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("provider", "model", "-effective_from")


@admin.register(PriceList)
class PriceListAdmin(TenantAdmin):
    """Global lists are read-only for members; the operator manages them. Finance keeps negotiated lists."""

    global_rows = True
    change_roles = add_roles = FINANCE
    list_display = ("name", "scope", "price_count", "created_at")
    search_fields = ("name",)
    fields = ("name", "description")

    @admin.display(description="Scope")
    def scope(self, obj):
        return "global" if obj.organization_id is None else obj.organization.slug

    @admin.display(description="Prices")
    def price_count(self, obj):
        return obj.prices.count()

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_superuser:
            obj.organization = current_organization(request)
        super().save_model(request, obj, form, change)


class PriceForm(forms.ModelForm):
    class Meta:
        model = ModelPrice
        fields = (
            "price_list",
            "provider",
            "model",
            "match_pattern",
            "currency",
            *PRICE_FIELDS,
            "effective_from",
            "effective_to",
            "source",
        )


@admin.register(ModelPrice)
class ModelPriceAdmin(TenantAdmin):
    """Prices are added or corrected as new versions; the re-rating of the usage they cover is shown first."""

    global_rows = True
    change_roles = add_roles = FINANCE
    form = PriceForm
    list_display = (
        "model",
        "provider",
        "price_list",
        "input_price",
        "cached_input_price",
        "output_price",
        "currency",
        "effective_from",
        "effective_to",
    )
    list_filter = ("price_list", "provider", "currency")
    search_fields = ("model", "provider", "match_pattern")
    date_hierarchy = "effective_from"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "price_list" and not request.user.is_superuser:
            kwargs["queryset"] = PriceList.objects.filter(organization=current_organization(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        """Through the pricing service, so that versions, audit, revision and re-pricing of waiting usage follow."""
        data = form.cleaned_data
        entry = PriceEntry(
            provider=(data.get("provider") or "").lower(),
            model=data["model"],
            match_pattern=data.get("match_pattern") or "",
            currency=data["currency"],
            input=data["input_price"],
            output=data["output_price"],
            cached_input=data.get("cached_input_price"),
            cache_write=data.get("cache_write_price"),
            long_context_threshold=data.get("long_context_threshold"),
            long_input=data.get("long_input_price"),
            long_cached_input=data.get("long_cached_input_price"),
            long_cache_write=data.get("long_cache_write_price"),
            long_output=data.get("long_output_price"),
            effective_from=data["effective_from"],
            effective_to=data.get("effective_to"),
            source=data.get("source") or "",
        )
        summary = model_price_set(price_list=data["price_list"], entry=entry, actor=request.user)
        found = ModelPrice.objects.filter(
            price_list=data["price_list"],
            provider=entry.provider,
            model=entry.model,
            effective_from=entry.effective_from,
        ).first()
        obj.pk = found.pk if found else None
        if summary.created or summary.updated:
            url = reverse("admin:pricing_rerate_preview")
            messages.info(
                request,
                f"Price saved. Usage already priced since {entry.effective_from:%Y-%m-%d} keeps its "
                f"price until re-rated: see the diff at {url}?start={entry.effective_from:%Y-%m-%d}",
            )

    def get_urls(self):
        return [
            path("rerate/", self.admin_site.admin_view(self.rerate_view), name="pricing_rerate_preview"),
            *super().get_urls(),
        ]

    def rerate_view(self, request):
        """Finance sees what re-pricing a range changes, per model, and applies it with a second click."""
        from apps.usage.filters import parse_moment
        from apps.usage.services import usage_rerate

        organization = current_organization(request)
        if organization is None or not self.has_change_permission(request):
            messages.error(request, "Choose an organization where you are finance or admin.")
            return render(request, "admin/pricing/rerate.html", {**self.admin_site.each_context(request)})
        start = request.POST.get("start") or request.GET.get("start") or ""
        end = request.POST.get("end") or request.GET.get("end") or ""
        report, error = None, None
        try:
            start_at = parse_moment(start, tz=organization.tz, end=False) if start else None
            end_at = parse_moment(end, tz=organization.tz, end=True) if end else None
        except forms.ValidationError as exc:
            error, start_at, end_at = " ".join(exc.messages), None, None
        if error is None and (start or request.method == "POST"):
            apply = request.method == "POST" and request.POST.get("apply") == "yes"
            report = usage_rerate(organization=organization, start=start_at, end=end_at, dry_run=not apply)
            if apply:
                messages.success(
                    request,
                    f"Re-rated {report.changed} record(s); invoiced months get adjustment lines on the next invoice.",
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Re-rate usage",
            "organization": organization,
            "report": report,
            "error": error,
            "start": start,
            "end": end,
            "lines": sorted(report.lines.values(), key=lambda line: abs(line.delta), reverse=True) if report else [],
        }
        return render(request, "admin/pricing/rerate.html", context)


@admin.register(FxRate)
class FxRateAdmin(TenantAdmin):
    """FX rates are global: the operator maintains them, members read them."""

    tenant_path = None
    list_display = ("date", "from_currency", "to_currency", "rate", "source")
    list_filter = ("from_currency", "to_currency")
    date_hierarchy = "date"

    def get_queryset(self, request):
        return FxRate.objects.all()
