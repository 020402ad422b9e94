"""What the demo calls realistic usage: cost centers, their models and features, token shapes.

Plain data, no Django imports, so that the benchmarks can use it before Django is set up.
"""

COST_CENTERS = [
    # code, name, parent, daily requests, {model: weight}
    ("cc_product", "Product", None, 0, {}),
    ("cc_search", "Search & answers", "cc_product", 420, {"gpt-4.1-mini": 6, "gpt-4.1": 2, "claude-haiku-4-5": 2}),
    (
        "cc_support_bot",
        "Support assistant",
        "cc_product",
        300,
        {"claude-sonnet-4-5": 5, "claude-haiku-4-5": 4, "gpt-4o-mini": 1},
    ),
    (
        "cc_marketing_analytics",
        "Marketing analytics",
        None,
        90,
        {"gpt-5": 3, "gemini-2.5-pro": 2, "gemini-2.5-flash": 3},
    ),
    ("cc_data_science", "Data science", None, 120, {"o3": 2, "gpt-5-mini": 4, "deepseek-v3.2": 3, "qwen-max": 1}),
    ("cc_platform", "Platform engineering", None, 60, {"gpt-4o": 2, "claude-opus-4-1": 1, "llama-3.3-70b-internal": 2}),
]
FEATURES = {
    "cc_search": ["semantic_search", "answer_synthesis", "query_rewrite"],
    "cc_support_bot": ["ticket_triage", "reply_draft", "summarise_thread"],
    "cc_marketing_analytics": ["campaign_copy", "survey_coding"],
    "cc_data_science": ["eval_runs", "labeling", "notebook_assist"],
    "cc_platform": ["code_review", "incident_summary"],
}
PROVIDERS = {
    "gpt": "openai",
    "o3": "openai",
    "claude": "anthropic",
    "gemini": "gemini",
    "deepseek": "deepseek",
    "qwen": "dashscope",
    "llama": "internal",
}
SHAPES = {  # (mean input, mean output, share of input served from cache)
    "gpt-5": (6000, 1800, 0.3),
    "gpt-5-mini": (3000, 700, 0.4),
    "gpt-4.1": (5000, 900, 0.5),
    "gpt-4.1-mini": (2500, 400, 0.5),
    "gpt-4o": (3500, 800, 0.3),
    "gpt-4o-mini": (1800, 350, 0.3),
    "o3": (8000, 4000, 0.2),
    "claude-sonnet-4-5": (9000, 1200, 0.6),
    "claude-haiku-4-5": (3000, 500, 0.5),
    "claude-opus-4-1": (12000, 2500, 0.4),
    "gemini-2.5-pro": (20000, 2000, 0.3),
    "gemini-2.5-flash": (6000, 900, 0.3),
    "deepseek-v3.2": (5000, 1500, 0.5),
    "qwen-max": (3000, 800, 0.0),
    "llama-3.3-70b-internal": (2500, 600, 0.0),
}
