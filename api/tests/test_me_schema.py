import pytest

from api.schemas import MeOut
from conftest import make_member, make_user


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["member", "follower", "cadre"])
def test_me_is_built_by_hand_but_holds_to_the_documented_schema(district, api, who):
    user = {
        "member": lambda: make_member(district.union_a1, "王五").user,
        "follower": lambda: make_user("关注者"),
        "cadre": lambda: district.admin_a,
    }[who]()
    body = api(user).get("/api/v1/me").json()
    # Round trip through the OpenAPI schema: same keys, same values, nothing coerced.
    assert MeOut.model_validate(body, strict=True).model_dump() == body
