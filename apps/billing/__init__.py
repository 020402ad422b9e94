"""Month close, invoices with four-eyes approval, adjustments and chargeback reports."""
