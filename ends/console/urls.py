from django.urls import path

from .views import audit_log, auth, cadres, dashboard, imports, members, orgs, requests

app_name = "console"
urlpatterns = [
    path("", dashboard.home, name="home"),
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("orgs/", orgs.org_root, name="orgs"),
    path("orgs/pick/", orgs.org_pick, name="org_pick"),
    path("orgs/<int:org_id>/", orgs.org_detail, name="org"),
    path(
        "orgs/<int:org_id>/<str:action>/",
        orgs.org_action,
        name="org_action",
    ),
    path("members/", members.member_list, name="members"),
    path("members/<int:member_id>/", members.member_detail, name="member"),
    path("members/<int:member_id>/reveal/", members.member_reveal, name="member_reveal"),
    path("imports/", imports.import_page, name="imports"),
    path("imports/upload/", imports.import_upload, name="import_upload"),
    path("imports/template.xlsx", imports.import_template, name="import_template"),
    path("imports/<int:job_id>/", imports.import_detail, name="import"),
    path("imports/<int:job_id>/progress/", imports.import_progress, name="import_progress"),
    path("imports/<int:job_id>/errors.xlsx", imports.import_errors, name="import_errors"),
    path("cadres/", cadres.cadre_list, name="cadres"),
    path("cadres/appoint/", cadres.cadre_appoint, name="cadre_appoint"),
    path("cadres/<int:cadre_id>/revoke/", cadres.cadre_revoke, name="cadre_revoke"),
    path("audit/", audit_log.audit_list, name="audit"),
    path("requests/", requests.request_list, name="requests"),
    path("requests/<str:kind>/<int:pk>/", requests.request_decide, name="request_decide"),
]
