import pytest

from svbench.bitrate import Bitrate, parse_list


@pytest.mark.parametrize(
    "text,bps",
    [("3k", 3000), ("0.5k", 500), ("9.6k", 9600), ("6000", 6000), ("0k5", 500), ("1k2", 1200),
     ("2.15k", 2150), ("24.6K", 24600), (6000, 6000), ("700bps", 700)],
)
def test_parse_forms_users_write(text, bps):
    assert Bitrate.parse(text).bps == bps


@pytest.mark.parametrize("text", ["", "abc", "-3k", "0", "0.0001k", "1.5"])
def test_parse_rejects_nonsense_with_the_text(text):
    with pytest.raises(ValueError, match="not a bitrate"):
        Bitrate.parse(text)


def test_label_is_canonical_and_round_trips():
    for text in ["3k", "0.5k", "1.2k", "2.15k", "6000", "0k5"]:
        b = Bitrate.parse(text)
        assert Bitrate.parse(b.label) == b
    assert Bitrate.parse("6000").label == "6k"
    assert Bitrate.parse("0k5").label == "0.5k"


def test_parse_list_and_ordering():
    assert [b.bps for b in parse_list("1.2k, 3.2k,6k")] == [1200, 3200, 6000]
    assert Bitrate.parse("0.5k") < Bitrate.parse("4k")
