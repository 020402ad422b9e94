"""The dataset of bench/scale.py: one organization's usage generated in bulk and written with PostgreSQL COPY.

Records look like seed_demo's (its models, token shapes, providers, features), on ~12 cost centers with a
hierarchy and a few hundred users, with a diurnal curve and quieter weekends. Prices come from the product:
every (model, token shape) of a per-model pool is priced once with apps.usage.services.price_usage and the
price book of apps.pricing.selectors, and the rows pick from those pools, so that every stored cost is
exactly what ingest would have stored. Rows are written in INGEST_COLUMNS order (the COPY column list of
the product's ingest), one COPY per day and worker, in timestamp order (as ingest appends them).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from apps.dashboard.demo_data import PROVIDERS, SHAPES  # noqa: E402  (plain data, no Django)

ORG_SLUG = "bench-scale"
TZ_NAME = "Europe/Berlin"

# code, name, parent, share of the traffic, {model: weight}, features, users drawn from (first n of the pool)
COST_CENTERS = [
    ("cc_product", "Product", None, 0, {}, [], 0),
    (
        "cc_search",
        "Search & answers",
        "cc_product",
        26,
        {"gpt-4.1-mini": 6, "gpt-4.1": 2, "claude-haiku-4-5": 2},
        ["semantic_search", "answer_synthesis", "query_rewrite"],
        40,
    ),
    (
        "cc_support_bot",
        "Support assistant",
        "cc_product",
        20,
        {"claude-sonnet-4-5": 5, "claude-haiku-4-5": 4, "gpt-4o-mini": 1},
        ["ticket_triage", "reply_draft", "summarise_thread"],
        240,
    ),
    (
        "cc_onboarding",
        "Onboarding flows",
        "cc_product",
        6,
        {"gpt-5-mini": 3, "gpt-4o-mini": 2},
        ["welcome_copy", "setup_helper"],
        30,
    ),
    ("cc_marketing", "Marketing", None, 0, {}, [], 0),
    (
        "cc_marketing_analytics",
        "Marketing analytics",
        "cc_marketing",
        6,
        {"gpt-5": 3, "gemini-2.5-pro": 2, "gemini-2.5-flash": 3},
        ["campaign_copy", "survey_coding"],
        25,
    ),
    (
        "cc_content",
        "Content studio",
        "cc_marketing",
        5,
        {"claude-sonnet-4-5": 2, "gpt-5": 1, "gemini-2.5-flash": 2},
        ["blog_draft", "translation", "seo_meta"],
        20,
    ),
    (
        "cc_data_science",
        "Data science",
        None,
        8,
        {"o3": 2, "gpt-5-mini": 4, "deepseek-v3.2": 3, "qwen-max": 1},
        ["eval_runs", "labeling", "notebook_assist"],
        30,
    ),
    (
        "cc_ds_evals",
        "Evaluation pipelines",
        "cc_data_science",
        9,
        {"gpt-5-mini": 3, "claude-haiku-4-5": 2, "deepseek-v3.2": 2},
        ["nightly_evals", "regression_suite"],
        10,
    ),
    (
        "cc_platform",
        "Platform engineering",
        None,
        4,
        {"gpt-4o": 2, "claude-opus-4-1": 1, "llama-3.3-70b-internal": 2},
        ["code_review", "incident_summary"],
        30,
    ),
    (
        "cc_platform_devtools",
        "Developer tools",
        "cc_platform",
        9,
        {"claude-sonnet-4-5": 3, "gpt-4.1": 2, "gpt-4.1-mini": 2},
        ["code_completion", "pr_description", "test_gen"],
        60,
    ),
    (
        "cc_finance_ops",
        "Finance operations",
        None,
        3,
        {"gpt-4.1": 2, "gemini-2.5-flash": 1},
        ["invoice_extraction", "variance_notes"],
        12,
    ),
    (
        "cc_legal",
        "Legal",
        None,
        2,
        {"claude-opus-4-1": 1, "claude-sonnet-4-5": 2},
        ["contract_review", "clause_search"],
        8,
    ),
]
UNKNOWN_CODE_SHARE = 0.004  # records that name a cost center that does not exist: unallocated, code kept
USERS = [f"u{n:04d}" for n in range(1, 301)]
POOL_SIZE = 1024  # token shapes priced per model


def provider_of(model: str) -> str:
    return next(p for prefix, p in PROVIDERS.items() if model.startswith(prefix))


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _num(value) -> str:
    return r"\N" if value is None else str(value)


@dataclass
class Plan:
    """How many records each day (in the organization's time zone) gets, and up to when."""

    days: list[tuple[date, int]]
    close_month: date
    now: datetime

    @property
    def total(self) -> int:
        return sum(n for _, n in self.days)


def day_weight(day: date) -> float:
    return 0.45 if day.weekday() >= 5 else 1.0


def make_plan(*, records: int, now: datetime, window_days: int = 90) -> Plan:
    """`records` in the previous calendar month (the month that is closed and exported); the other days of the
    last `window_days` days at the rate `records` spread over `window_days` days gives, so the dashboard's
    windows hold at least as much as an organization with `records` records over 90 days."""
    tz = ZoneInfo(TZ_NAME)
    local_now = now.astimezone(tz)
    today = local_now.date()
    close_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    next_month = today.replace(day=1)
    first = today - timedelta(days=window_days - 1)
    first = min(first, close_month)
    days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
    month_days = [d for d in days if close_month <= d < next_month]
    other_days = [d for d in days if not close_month <= d < next_month]
    weights = {d: day_weight(d) for d in days}
    month_weight = sum(weights[d] for d in month_days)
    counts: dict[date, int] = {}
    for d in month_days:
        counts[d] = int(records * weights[d] / month_weight)
    counts[month_days[-1]] += records - sum(counts.values())
    # the rest of the window at the average rate of `records` over the window (weekends quieter)
    mean_weight = sum(weights.values()) / len(days)
    per_weighted_day = records / window_days / mean_weight
    for d in other_days:
        counts[d] = int(per_weighted_day * weights[d])
    # Today holds a full weekday's volume whatever the weekday and hour (squeezed between midnight and now), so
    # that the raw read of today, the day ingest keeps dirty, costs the same whenever the bench runs.
    counts[today] = int(per_weighted_day)
    return Plan(days=[(d, counts[d]) for d in days], close_month=close_month, now=now)


def price_pools(*, organization, seed: int = 7) -> dict[str, list[tuple]]:
    """Per model, POOL_SIZE token shapes priced by the product: tuples of COPY-ready strings."""
    from apps.pricing.selectors import fx_table, price_book_for, pricing_revision
    from apps.usage.services import price_usage

    revision = pricing_revision()
    book = price_book_for(organization=organization, revision=revision)
    fx = fx_table(revision=revision)
    rng = random.Random(seed)
    models = sorted({m for *_, mix, _f, _u in COST_CENTERS for m in mix})
    pools: dict[str, list[tuple]] = {}
    # the price a record gets depends on its time; check that one price version covers the whole window
    probe_times = [datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC)]
    for model in models:
        provider = provider_of(model)
        ids = {getattr(book.lookup(provider=provider, model=model, at=t), "id", None) for t in probe_times}
        if len(ids) != 1:
            raise SystemExit(f"{model}: the price changes within the window; the pools assume one price version")
        mean_in, mean_out, cached_share = SHAPES[model]
        pool = []
        for _ in range(POOL_SIZE):
            input_tokens = max(50, int(rng.lognormvariate(0, 0.6) * mean_in))
            cache_read = int(input_tokens * cached_share * rng.random())
            cache_write = int((input_tokens - cache_read) * 0.1 * rng.random()) if model.startswith("claude") else 0
            output_tokens = max(1, int(rng.lognormvariate(0, 0.7) * mean_out))
            reasoning = int(output_tokens * 0.6 * rng.random()) if model in ("o3", "gpt-5", "gpt-5-mini") else 0
            priced = price_usage(
                book=book,
                fx=fx,
                organization=organization,
                provider=provider,
                model=model,
                timestamp=probe_times[1],
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
            )
            pool.append(
                (
                    provider,
                    model,
                    str(input_tokens),
                    str(output_tokens),
                    str(cache_read),
                    str(cache_write),
                    str(reasoning),
                    str(priced.status),
                    _num(priced.price_id),
                    _num(priced.cost),
                    priced.cost_currency,
                    _num(priced.fx_rate),
                    _num(priced.billing_cost),
                    "1" if priced.price_id else "0",
                    output_tokens,
                )
            )
        pools[model] = pool
    return pools


# The COPY line of one row, in INGEST_COLUMNS order. Each column's expression uses the loop's locals:
# p (the priced token shape), ts/recv (timestamps as text), rid, cc, unk, user, sess, feat, env, tags, lat, st.
COLUMN_EXPRESSIONS = {
    "organization_id": "ORG",
    "request_id": "rid",
    "timestamp": "ts",
    "received_at": "recv",
    "provider": "p[0]",
    "model": "p[1]",
    "input_tokens": "p[2]",
    "output_tokens": "p[3]",
    "cache_read_tokens": "p[4]",
    "cache_write_tokens": "p[5]",
    "reasoning_tokens": "p[6]",
    "cost_center_id": "cc",
    "unknown_cost_center": "unk",
    "user_id": "user",
    "session_id": "sess",
    "feature": "feat",
    "feature_flag": "flag",
    "environment": "env",
    "tags": "tags",
    "latency_ms": "lat",
    "status": "st",
    "api_key_id": "KEY",
    "reported_cost": "NULL",
    "reported_currency": "''",
    "pricing_status": "p[7]",
    "price_id": "p[8]",
    "cost": "p[9]",
    "cost_currency": "p[10]",
    "fx_rate": "p[11]",
    "billing_cost": "p[12]",
    "priced_at": "(recv if p[13] == '1' else NULL)",
}


def _line_function(columns: tuple[str, ...]):
    missing = [c for c in columns if c not in COLUMN_EXPRESSIONS]
    if missing:
        raise SystemExit(f"INGEST_COLUMNS has column(s) this bench does not fill: {missing}; update scale_data.py")
    body = "\\t".join("{" + COLUMN_EXPRESSIONS[c] + "}" for c in columns)
    source = (
        "def line(ORG, KEY, rid, ts, recv, p, cc, unk, user, sess, feat, flag, env, tags, lat, st):\n"
        f'    return f"{body}\\n"\n'
    )
    namespace: dict = {"NULL": "\\N"}
    exec(source, namespace)  # noqa: S102 - a template built from the product's own column list
    return namespace["line"]


@dataclass
class LoadJob:
    """What one loader process writes: its days, in order."""

    dsn: str
    worker: int
    days: list[tuple[str, int]]  # (ISO date, count)
    org_id: int
    api_key_id: int
    cost_centers: dict[str, int]  # code -> id
    unallocated_id: int
    pools: dict[str, list[tuple]]
    columns: tuple[str, ...]
    now_epoch: float
    seed: int


def load_days(job: LoadJob) -> tuple[int, float]:
    """Generate and COPY the job's days; one transaction per day. Returns (rows, seconds)."""
    import psycopg

    tz = ZoneInfo(TZ_NAME)
    rng = random.Random(job.seed)
    line = _line_function(job.columns)
    centers = [c for c in COST_CENTERS if c[3]]
    center_weights = [c[3] for c in centers]
    cum_centers = _cumulative(center_weights)
    mixes = []
    for code, _name, _parent, _w, mix, features, n_users in centers:
        names = list(mix)
        mixes.append(
            (
                str(job.cost_centers[code]),
                names,
                _cumulative([mix[m] for m in names]),
                features,
                USERS[:n_users],
                _copy_text(f'{{"team": "{code.removeprefix("cc_")}"}}'),
            )
        )
    suffixes = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=20))
        for _ in range(4096)
    ]
    unallocated = str(job.unallocated_id)
    org, key = str(job.org_id), str(job.api_key_id)
    columns = ", ".join(job.columns)
    seq = 0
    rows = 0
    started = time.perf_counter()
    random_ = rng.random
    betav = rng.betavariate
    choice = rng.choice
    randrange = rng.randrange
    lognorm = rng.lognormvariate
    from bisect import bisect

    seconds_text: dict[int, str] = {}

    def stamp(epoch: float) -> str:
        whole = int(epoch)
        prefix = seconds_text.get(whole)
        if prefix is None:
            if len(seconds_text) > 200_000:
                seconds_text.clear()
            prefix = seconds_text[whole] = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{prefix}.{int((epoch - whole) * 1e6):06d}+00"

    with psycopg.connect(job.dsn, autocommit=False) as conn:
        # The rows reference only ids read from the database a moment ago; skipping the per-row deferred
        # foreign-key checks (a third of COPY's cost here) is what a bulk load does. scale.py checks them after.
        conn.execute("SET session_replication_role = replica")
        conn.commit()
        for iso, count in job.days:
            day = date.fromisoformat(iso)
            start = datetime.combine(day, datetime.min.time(), tz).timestamp()
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).timestamp()
            span = end - start  # 23, 24 or 25 hours
            limit = min(end, job.now_epoch - 120)
            if limit < end:  # today: the day's curve squeezed into [midnight, now - 2 min)
                span = max(60.0, limit - start)
            moments = sorted(start + betav(2.5, 2.5) * span for _ in range(count))
            buffer: list[str] = []
            with conn.cursor() as cursor, cursor.copy(f"COPY usage_usagerecord ({columns}) FROM STDIN") as copy:
                for moment in moments:
                    seq += 1
                    c = mixes[bisect(cum_centers, random_() * cum_centers[-1])]
                    cc, names, cum, features, users, tags = c
                    p = choice(job.pools[names[bisect(cum, random_() * cum[-1])]])
                    unk = ""
                    if random_() < UNKNOWN_CODE_SHARE:
                        cc, unk = unallocated, "cc_legacy_batch"
                    lat = int(lognorm(0, 0.4) * (350 + p[14] * 2))
                    recv_epoch = min(moment + lat / 1000 + 1 + random_() * 20, job.now_epoch - 1)
                    buffer.append(
                        line(
                            org,
                            key,
                            f"chatcmpl-{job.worker}{seq:010d}{suffixes[seq & 4095]}",
                            stamp(moment),
                            stamp(recv_epoch),
                            p,
                            cc,
                            unk,
                            choice(users),
                            f"s-{randrange(10**7)}",
                            choice(features),
                            "",
                            "production" if random_() < 0.85 else "staging",
                            tags,
                            lat,
                            "ok" if random_() < 0.985 else "error",
                        )
                    )
                    if len(buffer) >= 2000:
                        copy.write("".join(buffer))
                        buffer.clear()
                if buffer:
                    copy.write("".join(buffer))
            conn.commit()
            rows += len(moments)
    return rows, time.perf_counter() - started


def _cumulative(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def live_payloads(*, count: int, now: datetime, seconds: float, prefix: str, seed: int) -> list[dict]:
    """`count` records as an application sends them to POST /api/v1/usage, timestamped in the `seconds` before
    `now`: the same cost centers, models, features and users as the loaded days, in time order."""
    rng = random.Random(seed)
    centers = [c for c in COST_CENTERS if c[3]]
    weights = [c[3] for c in centers]
    records = []
    for n in range(count):
        code, _name, _parent, _w, mix, features, n_users = rng.choices(centers, weights)[0]
        model = rng.choices(list(mix), list(mix.values()))[0]
        mean_in, mean_out, cached_share = SHAPES[model]
        input_tokens = max(50, int(rng.lognormvariate(0, 0.6) * mean_in))
        output_tokens = max(1, int(rng.lognormvariate(0, 0.7) * mean_out))
        moment = now - timedelta(seconds=seconds * (count - n) / count)
        records.append(
            {
                "request_id": f"{prefix}-{n:08d}",
                "timestamp": moment.isoformat(timespec="milliseconds"),
                "provider": provider_of(model),
                "model": model,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_read_tokens": int(input_tokens * cached_share * rng.random()),
                "cost_center": "cc_legacy_batch" if rng.random() < UNKNOWN_CODE_SHARE else code,
                "user_id": rng.choice(USERS[:n_users]),
                "session_id": f"s-{rng.randrange(10**7)}",
                "feature": rng.choice(features),
                "environment": "production" if rng.random() < 0.85 else "staging",
                "latency_ms": int(rng.lognormvariate(0, 0.4) * (350 + output_tokens * 2)),
                "status": "ok" if rng.random() < 0.985 else "error",
                "tags": {"team": code.removeprefix("cc_")},
            }
        )
    return records
