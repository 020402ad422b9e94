"""WSGI entry point of the PROTOTYPE (bench/whatif.py): the product's application with the suggestions patched in."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costportal.settings.base")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

from bench.whatif import apply  # noqa: E402

apply()
