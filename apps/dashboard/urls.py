from django.contrib.auth import views as auth_views
from django.urls import path

from apps.dashboard import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("dashboard/<slug:slug>/", views.dashboard, name="dashboard"),
    path("dashboard/<slug:slug>/export.csv", views.export_csv, name="dashboard-export"),
    path("dashboard/<slug:slug>/usage/", views.usage_list, name="dashboard-usage"),
]
