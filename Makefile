# The two commands of the README: `make demo` runs the portal with demo data, `make test` runs the tests.
# Both build .venv from requirements.txt first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: demo test venv chromium

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# Without DATABASE_URL/REDIS_URL the demo runs on SQLite (var/) with in-process tasks.
demo: venv
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 0.0.0.0:$(PORT)

# Against the PostgreSQL and Redis of this machine (DATABASE_URL and REDIS_URL override them).
# Browser tests drive Debian's chromium; as root this installs it when it is missing.
test: venv chromium
	$(PY) -m pytest $(PYTEST_ARGS)

chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium is not installed: the browser tests will be skipped"
