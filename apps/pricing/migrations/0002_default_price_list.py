"""Ship the default global price list (apps/pricing/data/default_prices.json)."""

from django.db import migrations

from apps.pricing.importers import parse_default_prices

EPOCH = "1970-01-01T00:00:00+00:00"


def load_default_prices(apps, schema_editor):
    PriceList = apps.get_model("pricing", "PriceList")
    ModelPrice = apps.get_model("pricing", "ModelPrice")
    PricingRevision = apps.get_model("pricing", "PricingRevision")
    document, parsed = parse_default_prices()
    price_list, _ = PriceList.objects.get_or_create(
        organization=None, name=document["name"], defaults={"description": document["description"]}
    )
    for entry in parsed.entries:
        ModelPrice.objects.get_or_create(
            price_list=price_list, provider=entry.provider, model=entry.model, effective_from=EPOCH,
            defaults={
                "organization": None, "match_pattern": entry.match_pattern, "currency": entry.currency,
                "input_price": entry.input, "cached_input_price": entry.cached_input,
                "cache_write_price": entry.cache_write, "output_price": entry.output,
                "long_context_threshold": entry.long_context_threshold, "long_input_price": entry.long_input,
                "long_cached_input_price": entry.long_cached_input, "long_cache_write_price": entry.long_cache_write,
                "long_output_price": entry.long_output, "source": entry.source,
            },
        )
    PricingRevision.objects.update_or_create(pk=1, defaults={"revision": 1})


class Migration(migrations.Migration):
    dependencies = [("pricing", "0001_initial")]

    operations = [migrations.RunPython(load_default_prices, migrations.RunPython.noop)]
