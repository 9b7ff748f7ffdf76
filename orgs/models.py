from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from treebeard.mp_tree import MP_Node


class OrgKind(models.TextChoices):
    FEDERATION = "federation", _("总工会")
    STREET = "street", _("街道工会")
    TOWN = "town", _("镇工会")
    INDUSTRY = "industry", _("行业工会")
    ENTERPRISE = "enterprise", _("企业工会")
    COMMUNITY = "community", _("社区工会")
    VILLAGE = "village", _("村工会")
    JOINT = "joint", _("联合工会")
    INSTITUTION = "institution", _("机关事业单位工会")


class Org(MP_Node):
    """A union organization. The materialized path makes "X's whole subtree" one prefix query."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=OrgKind.choices)
    # Denormalized from the path so that lists and the API name the parent without a query per row;
    # kept right by orgs.services, the only writer of the tree.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children_set")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    node_order_by = None

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="org_unique_name_among_siblings"),
        ]

    def __str__(self) -> str:
        return self.name


class CadreRoleKind(models.TextChoices):
    ADMIN = "admin", _("管理员")
    STAFF = "staff", _("工作人员")


class CadreRole(models.Model):
    """A person's role on an org; it reaches the org's whole subtree and nothing else."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cadre_roles")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="cadre_roles")
    role = models.CharField(max_length=10, choices=CadreRoleKind.choices)
    title = models.CharField(max_length=50, blank=True)
    appointed_at = models.DateTimeField(auto_now_add=True)
    appointed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "org"], name="cadre_role_one_per_org")]
