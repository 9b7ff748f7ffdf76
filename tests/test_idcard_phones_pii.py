"""GB 11643 ID numbers, mainland mobile numbers, PII encryption, blind indexes and masks."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import idcard, phones, pii

TODAY = dt.date(2025, 6, 1)


def with_check(first17: str) -> str:
    return first17 + idcard.check_digit(first17)


def an_id_ending_in_x() -> str:
    for seq in range(1000):
        first17 = f"11010519491231{seq:03d}"
        if idcard.check_digit(first17) == "X":
            return first17 + "X"
    raise AssertionError("no X check digit found")


# --- ID numbers --------------------------------------------------------------------------------


def test_a_well_known_valid_id_number_passes():
    # The GB 11643 worked example.
    assert idcard.validate("11010519491231002X", today=TODAY) == "11010519491231002X"


def test_an_id_ending_in_x_passes_and_a_lowercase_x_is_normalized():
    value = an_id_ending_in_x()
    assert idcard.validate(value.lower(), today=TODAY) == value


def test_spaces_are_removed_before_checking():
    value = with_check("51011219900101123")
    assert idcard.validate(" " + value[:6] + " " + value[6:] + " ", today=TODAY) == value


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "required"),
        (None, "required"),
        ("51011219900101123", "invalid_length"),
        (with_check("51011219900101123") + "1", "invalid_length"),
        ("5101121990010112A4", "invalid_format"),
        (with_check("99011219900101123"), "invalid_region"),
        (with_check("00011219900101123"), "invalid_region"),
        (with_check("51000019900101123"), "invalid_region"),
        (with_check("51011219900230123"), "invalid_birth_date"),  # 30 February
        (with_check("51011219901301123"), "invalid_birth_date"),  # month 13
        (with_check("51011220300101123"), "invalid_birth_date"),  # born in the future
        (with_check("51011218991231123"), "invalid_birth_date"),  # before 1900
    ],
)
def test_invalid_id_numbers_say_what_is_wrong(raw, code):
    with pytest.raises(idcard.IdNumberError) as e:
        idcard.validate(raw, today=TODAY)
    assert e.value.code == code


def test_a_wrong_check_digit_is_invalid_checksum():
    good = with_check("51011219900101123")
    wrong = "0" if good[-1] != "0" else "1"
    with pytest.raises(idcard.IdNumberError) as e:
        idcard.validate(good[:17] + wrong, today=TODAY)
    assert e.value.code == "invalid_checksum"


def test_error_messages_never_echo_the_number():
    bad = with_check("51011219900230123")
    with pytest.raises(idcard.IdNumberError) as e:
        idcard.validate(bad, today=TODAY)
    assert bad not in str(e.value) and bad[:14] not in e.value.message


def test_gender_and_birth_date_come_from_the_number():
    male = with_check("51011219900101123")  # order code 123: odd → male
    female = with_check("51011219900101124")
    assert idcard.gender(male) == "M"
    assert idcard.gender(female) == "F"
    assert idcard.birth_date(male) == dt.date(1990, 1, 1)


_PROVINCES = sorted(idcard.PROVINCE_CODES)


@st.composite
def valid_ids(draw) -> str:
    province = draw(st.sampled_from(_PROVINCES))
    rest_of_region = draw(st.integers(min_value=1, max_value=9999))
    birth = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY))
    seq = draw(st.integers(min_value=0, max_value=999))
    first17 = f"{province:02d}{rest_of_region:04d}{birth:%Y%m%d}{seq:03d}"
    return with_check(first17)


@settings(max_examples=300, deadline=None)
@given(valid_ids())
def test_every_generated_valid_id_passes(value):
    assert idcard.validate(value, today=TODAY) == value


@settings(max_examples=300, deadline=None)
@given(valid_ids(), st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=9))
def test_any_single_digit_change_in_the_first_17_breaks_the_checksum(value, pos, delta):
    changed_digit = str((int(value[pos]) + delta) % 10)
    changed = value[:pos] + changed_digit + value[pos + 1 :]
    # The weights are all non-zero mod 11, so one changed digit always changes the check digit.
    assert idcard.check_digit(changed[:17]) != changed[17]
    with pytest.raises(idcard.IdNumberError) as e:
        idcard.validate(changed, today=TODAY)
    # A change in the region or birth date may be caught by those checks first; never accepted.
    assert e.value.code in {"invalid_checksum", "invalid_region", "invalid_birth_date"}
    if pos >= 14:
        assert e.value.code == "invalid_checksum"


# --- phones ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["13912345678", "+8613912345678", "008613912345678", " 139 1234 5678 ", "139-1234-5678", "+86 139 1234 5678"],
)
def test_phone_formats_normalize_to_11_digits(raw):
    assert phones.validate(raw) == "13912345678"


def test_a_phone_stored_by_excel_as_a_float_is_read_back():
    assert phones.validate(13912345678.0) == "13912345678"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "required"),
        (None, "required"),
        ("12912345678", "invalid_phone"),  # 12x is not a mobile prefix
        ("1391234567", "invalid_phone"),
        ("139123456789", "invalid_phone"),
        ("1391234567a", "invalid_phone"),
        ("02812345678", "invalid_phone"),
        ("+85213912345678", "invalid_phone"),
    ],
)
def test_bad_phones_are_rejected(raw, code):
    with pytest.raises(phones.PhoneError) as e:
        phones.validate(raw)
    assert e.value.code == code


# --- PII ---------------------------------------------------------------------------------------


def test_encrypt_then_decrypt_returns_the_value():
    for value in ("13912345678", "11010519491231002X", "张三·李", ""):
        assert pii.decrypt(pii.encrypt(value)) == value


def test_decrypt_accepts_memoryview_and_empty():
    blob = pii.encrypt("13912345678")
    assert pii.decrypt(memoryview(blob)) == "13912345678"
    assert pii.decrypt(None) == ""
    assert pii.decrypt(b"") == ""


def test_equal_values_encrypt_to_different_ciphertexts():
    a, b = pii.encrypt("13912345678"), pii.encrypt("13912345678")
    assert a != b
    assert b"13912345678" not in a


def test_a_tampered_ciphertext_does_not_decrypt():
    from cryptography.exceptions import InvalidTag

    blob = bytearray(pii.encrypt("13912345678"))
    blob[-1] ^= 1
    with pytest.raises(InvalidTag):
        pii.decrypt(bytes(blob))


def test_blind_index_is_equal_for_equal_values_and_differs_otherwise():
    assert pii.phone_index("13912345678") == pii.phone_index("13912345678")
    assert pii.phone_index("13912345678") != pii.phone_index("13912345679")
    assert "13912345678" not in pii.phone_index("13912345678")


def test_id_index_ignores_the_case_of_x_and_kinds_are_separate():
    value = an_id_ending_in_x()
    assert pii.id_number_index(value) == pii.id_number_index(value.lower())
    assert pii.blind_index("phone", "x") != pii.blind_index("idno", "x")


def test_masks_hide_the_middle():
    assert pii.mask_phone("13912345678") == "139****5678"
    assert pii.mask_id_number("11010519491231002X") == "110***********002X"
    assert len(pii.mask_id_number("11010519491231002X")) == 18
    assert pii.mask_phone("12345") == "*****"
    assert pii.mask_id_number("") == ""
