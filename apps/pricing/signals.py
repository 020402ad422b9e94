"""Events of the pricing app that other apps react to (pricing never imports them)."""

from django.dispatch import Signal

# Sent after commit when prices or FX rates changed: organization (None for global), since (datetime or None).
prices_changed = Signal()
fx_rates_changed = Signal()
