from hypothesis import given, strategies as st

from appliance.lists.bulk import special_lines
from appliance.lists.parse import LineError, normalize_domain, strip_comment

ODD = ["ok.example", "a" * 64 + ".example", "b" * 250 + ".c", "UPPER.example", "-x.example",
       "x-.example", "a..b", "", "# comment", "fine.org", "0.0.0.0 x.example", "end.", ".start",
       "crlf.example\r", "||adblock.example^", "*.wild.example", "bücher.example"]


def plain(line: str) -> bool:
    """The reference: a line the full parser accepts unchanged as one bare name."""
    if not line or strip_comment(line) != line or line.startswith("*."):
        return False
    try:
        return normalize_domain(line) == line and not line.endswith(".")
    except LineError:
        return False


def check(lines: list[str]) -> None:
    text = "\n".join(lines)
    special = special_lines(text, lines)
    for i, line in enumerate(lines):
        # every line is either special or a name the slow path would accept as it stands
        assert i in special or line == "" or plain(line), (i, line)


def test_known_cases():
    check(ODD)
    special = special_lines("\n".join(ODD), ODD)
    assert 0 not in special and 9 not in special            # the plain ones stay on the fast path


@given(st.lists(st.text(alphabet="ab-._Z1 #\r", max_size=12), max_size=30))
def test_never_lets_an_invalid_line_through(lines):
    lines = [l.replace("\n", "") for l in lines]
    check(lines)
