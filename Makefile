# The two commands of the README: `make demo` runs the portal with demo data, `make test` runs the tests.
# Both build .venv from requirements.txt first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: demo test venv

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
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)
