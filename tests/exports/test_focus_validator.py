"""The FOCUS export passes the FinOps Foundation's focus-validator for FOCUS 1.2 (PRODUCT.md section 8)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.billing.services import invoice_close
from apps.exports.focus import FOCUS_APPLICABILITY_CRITERIA, FOCUS_VERSION
from apps.usage.models import UsageRecord
from tests.conftest import client_with_key
from tests.exports.conftest import body_text, ingest, parse_csv
from tests.exports.focus_validator import NoPython312, run_focus_validator, validator_environment
from tests.factories import CostCenterFactory, FxRateFactory, OrganizationFactory, make_api_key, usage_payload

# Rules that must have run and passed, not been skipped: those of the columns this export adds to
# the mandatory ones, and the ones its choices of names and formats rest on.
RULES_THAT_MUST_PASS = (
    "CostAndUsage-D-011-C",  # ConsumedQuantity present
    "CostAndUsage-D-019-C",  # SubAccountId present
    "CostAndUsage-D-029-C",  # SubAccountName present
    "CostAndUsage-D-058-C",  # SkuPriceId present
    "CostAndUsage-D-060-C",  # SkuId present
    "CostAndUsage-D-064-C",  # Tags present
    "CostAndUsage-D-066-C",  # ConsumedUnit present
    "BilledCost-C-000-M",
    "BilledCost-C-005-C",  # not a marketplace charge: ProviderName is the InvoiceIssuerName
    "BillingAccountName-C-003-C",
    "BillingPeriodStart-C-000-M",
    "ChargeClass-C-000-M",
    "ChargePeriodEnd-C-000-M",
    "ConsumedQuantity-C-000-C",
    "ConsumedUnit-C-000-C",
    "InvoiceId-C-000-O",
    "PricingQuantity-C-000-M",
    "PricingUnit-C-000-M",
    "SkuId-C-000-C",
    "SkuPriceId-C-001-M",
    "SkuPriceId-C-008-M",  # one SkuId per SkuPriceId
    "SkuPriceDetails-C-000-C",
    "SubAccountId-C-000-C",
    "SubAccountName-C-000-C",
    "Tags-C-000-C",
)


@pytest.fixture(scope="session")
def focus_validator_ready():
    """Builds (once, cached outside the repository) the virtualenv with the pinned focus-validator."""
    try:
        return validator_environment()
    except NoPython312 as missing:
        pytest.skip(str(missing))


def arrive_after(invoice, org, request_id):
    UsageRecord.objects.for_org(org).filter(request_id=request_id).update(
        received_at=invoice.cutoff_at + timedelta(minutes=1)
    )


@pytest.fixture
def eurocorp(db, priced_model, openai_price):
    """A EUR organization billed from USD prices, with tags and two cost centers.

    March and April are invoiced; usage of March arrived after its close and April's invoice bills
    it; usage of April arrived after its close and May, still open, will bill it.
    """
    org = OrganizationFactory(slug="eurocorp", name="Eurocorp", billing_currency="EUR", timezone="Europe/Berlin")
    FxRateFactory(date=date(2026, 1, 1), from_currency="USD", to_currency="EUR", rate=Decimal("0.9"))
    CostCenterFactory(organization=org, code="cc_search", name="Search")
    CostCenterFactory(organization=org, code="cc_ops", name="Operations")

    def month_of_usage(month: int):
        ingest(
            org,
            *[
                usage_payload(
                    f"s-{month}-{day}-{i}",
                    cost_center="cc_search",
                    tags={"team": "search", "env": "prod" if day == 28 or i % 2 else "dev"},
                    timestamp=f"2026-{month:02d}-{day:02d}T{8 + i:02d}:15:00+01:00",
                )
                for day in (1, 2, 28)
                for i in range(3)
            ],
            usage_payload(
                f"gpt-{month}",
                cost_center="cc_search",
                provider="openai",
                model="gpt-4.1-2025-04-14",
                cache_read_tokens=400,
                timestamp=f"2026-{month:02d}-02T12:00:00+01:00",
            ),
            usage_payload(
                f"ops-{month}-1", cost_center="cc_ops", user_id="u1", timestamp=f"2026-{month:02d}-15T09:00:00+01:00"
            ),
            usage_payload(
                f"ops-{month}-2",
                cost_center="cc_ops",
                tags={"team": "ops"},
                timestamp=f"2026-{month:02d}-15T10:00:00+01:00",
            ),
            usage_payload(f"nobody-{month}", timestamp=f"2026-{month:02d}-20T10:00:00+01:00"),
            usage_payload(f"unpriced-{month}", model="unknown-model", timestamp=f"2026-{month:02d}-20T11:00:00+01:00"),
        )

    month_of_usage(3)
    march = invoice_close(organization=org, period=date(2026, 3, 1))
    ingest(
        org,
        usage_payload("late-march", cost_center="cc_ops", tags={"team": "ops"}, timestamp="2026-03-31T23:30:00+02:00"),
    )
    arrive_after(march, org, "late-march")
    month_of_usage(4)
    UsageRecord.objects.for_org(org).filter(request_id__startswith="s-4-").update(received_at=march.cutoff_at)
    april = invoice_close(organization=org, period=date(2026, 4, 1), now=timezone.now() + timedelta(minutes=10))
    ingest(org, usage_payload("late-april", cost_center="cc_search", timestamp="2026-04-30T12:00:00+02:00"))
    arrive_after(april, org, "late-april")
    month_of_usage(5)
    return org, {"2026-03": march, "2026-04": april}


@pytest.mark.parametrize("period, corrections", [("2026-04", "billed"), ("2026-05", "pending")])
def test_focus_export_passes_the_focus_validator_for_focus_1_2(
    focus_validator_ready, eurocorp, tmp_path, period, corrections
):
    org, invoices = eurocorp
    client = client_with_key(make_api_key(org, scopes=("read",))[1])
    response = client.get("/api/v1/exports/focus.csv", {"period": period})
    assert response.status_code == 200
    text = body_text(response)
    # The file has what the test means it to: usage charges, corrections, tags, a SKU of a provider.
    assert ",Correction," in text and "openai/gpt-4.1" in text and '"{""env"":""prod"",""team"":""search""}"' in text
    assert {row["InvoiceId"] for row in parse_csv(text)} == (
        {invoices[period].number} if corrections == "billed" else {""}
    )
    data_file = tmp_path / f"focus-{period}.csv"
    data_file.write_text(text)

    report = run_focus_validator(
        data_file, version=FOCUS_VERSION, applicability_criteria=FOCUS_APPLICABILITY_CRITERIA, workdir=tmp_path / "run"
    )

    print(report.summary)  # shown with -rA
    assert not report.real_failures, report.failure_report()
    not_passed = {rule: report.statuses.get(rule, "not run") for rule in RULES_THAT_MUST_PASS}
    assert not_passed == dict.fromkeys(RULES_THAT_MUST_PASS, "PASS"), report.failure_report()
    # The dataset-level composites report every presence rule and every column rule as met.
    for composite in ("CostAndUsage-D-001-M", "CostAndUsage-D-002-M"):
        assert "AND passed" in report.details[composite], report.failure_report()
