from django.urls import re_path

from apps.budgets.api import views

urlpatterns = [
    re_path(r"^budgets/?$", views.BudgetListView.as_view(), name="budget-list"),
    re_path(r"^budgets/check/?$", views.BudgetCheckView.as_view(), name="budget-check"),
    re_path(r"^budgets/(?P<pk>\d+)/?$", views.BudgetDetailView.as_view(), name="budget-detail"),
    re_path(
        r"^budgets/(?P<budget_pk>\d+)/change-requests/?$",
        views.BudgetChangeRequestListView.as_view(),
        name="budget-change-requests",
    ),
    re_path(r"^budget-change-requests/?$", views.BudgetChangeRequestListView.as_view(), name="change-request-list"),
    *(
        re_path(
            rf"^budget-change-requests/(?P<pk>\d+)/{action}/?$",
            views.BudgetChangeRequestActionView.as_view(action_name=action),
            name=f"change-request-{action}",
        )
        for action in ("approve", "reject", "cancel")
    ),
    re_path(r"^alerts/?$", views.AlertListView.as_view(), name="alert-list"),
]
