"""Back office for invoices: read-only lines, and the approve / issue / void / resend actions of finance."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path

from apps.billing.chargeback import chargeback_resend
from apps.billing.models import ChargebackEmail, Invoice, InvoiceLine, InvoiceTransition
from apps.billing.services import invoice_approve, invoice_issue, invoice_void
from apps.tenancy.backoffice import ReadOnlyTenantAdmin, TenantAdmin, visible_cost_centers
from apps.tenancy.models import Role

FINANCE = (Role.ADMIN, Role.FINANCE)


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = (
        "kind",
        "usage_period",
        "cost_center",
        "provider",
        "model",
        "requests",
        "input_tokens",
        "output_tokens",
        "exact_amount",
        "amount",
    )
    readonly_fields = fields
    extra = max_num = 0
    can_delete = False


class InvoiceTransitionInline(admin.TabularInline):
    model = InvoiceTransition
    fields = ("at", "from_state", "to_state", "actor_label", "reason")
    readonly_fields = fields
    extra = max_num = 0
    can_delete = False


@admin.register(Invoice)
class InvoiceAdmin(TenantAdmin):
    """Invoices are written by the month close only; here finance moves them through their states."""

    view_roles = (Role.ADMIN, Role.FINANCE, Role.VIEWER)
    list_display = (
        "number",
        "period",
        "state",
        "total",
        "currency",
        "usage_total",
        "adjustments_total",
        "unpriced_requests",
        "closed_at",
    )
    list_filter = ("state",)
    readonly_fields = (
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
        "prepared_by",
        "approved_by",
        "approved_at",
        "issued_at",
        "voided_at",
        "void_reason",
    )
    fields = readonly_fields
    inlines = (InvoiceLineInline, InvoiceTransitionInline)
    actions = ("approve", "issue")
    change_form_template = "admin/billing/invoice/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self._allowed(request, FINANCE):
            actions.pop("approve", None)
            actions.pop("issue", None)
        return actions

    def _run(self, request, queryset, service, verb):
        for invoice in queryset:
            try:
                service(invoice=invoice, user=request.user)
                messages.success(request, f"{invoice.number} {verb}.")
            except (PermissionDenied, ValidationError) as exc:
                messages.error(request, f"{invoice.number}: {' '.join(getattr(exc, 'messages', [str(exc)]))}")

    @admin.action(description="Approve (four eyes: not by the preparer)")
    def approve(self, request, queryset):
        self._run(request, queryset, invoice_approve, "approved")

    @admin.action(description="Issue and send the chargeback reports")
    def issue(self, request, queryset):
        self._run(request, queryset, invoice_issue, "issued")

    def get_urls(self):
        return [
            path("<path:object_id>/void/", self.admin_site.admin_view(self.void_view), name="billing_invoice_void"),
            path(
                "<path:object_id>/resend/", self.admin_site.admin_view(self.resend_view), name="billing_invoice_resend"
            ),
            *super().get_urls(),
        ]

    def void_view(self, request, object_id):
        invoice = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self._allowed(request, FINANCE, invoice):
            raise PermissionDenied
        form = VoidForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = invoice_void(invoice=invoice, user=request.user, reason=form.cleaned_data["reason"])
            except (PermissionDenied, ValidationError) as exc:
                messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
                return redirect("admin:billing_invoice_change", invoice.pk)
            messages.success(
                request, f"{invoice.number} is void; the month was closed again as {result.new_draft.number}."
            )
            return redirect("admin:billing_invoice_change", result.new_draft.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Void {invoice.number}",
            "invoice": invoice,
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/billing/invoice/void.html", context)

    def resend_view(self, request, object_id):
        invoice = get_object_or_404(self.get_queryset(request), pk=object_id)
        if request.method != "POST" or not self._allowed(request, FINANCE, invoice):
            raise PermissionDenied
        cost_center = get_object_or_404(visible_cost_centers(request), pk=request.POST.get("cost_center"))
        try:
            sent = chargeback_resend(invoice=invoice, cost_center=cost_center, user=request.user)
            messages.success(request, f"Sent {sent} chargeback email(s) for {cost_center.code} again.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("admin:billing_invoice_change", invoice.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "can_act": self._allowed(request, FINANCE, invoice),
            "charged_cost_centers": visible_cost_centers(request).filter(pk__in=invoice.lines.values("cost_center_id")),
        }
        return super().change_view(request, object_id, form_url, extra_context)


class VoidForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, max_length=2000)


@admin.register(ChargebackEmail)
class ChargebackEmailAdmin(ReadOnlyTenantAdmin):
    tenant_path = "invoice__organization"
    view_roles = FINANCE
    list_display = ("sent_at", "invoice", "cost_center", "recipient", "resend", "sent_by")
    list_filter = ("resend",)
