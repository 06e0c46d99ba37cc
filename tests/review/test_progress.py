"""Progress bars: drawn on a terminal, nothing at all otherwise (output stays parseable)."""
import io

from appliance.review import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_on_a_terminal_and_none_in_a_pipe(monkeypatch):
    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        with progress.bar(4 << 20, "verify") as update:
            for _ in range(4):
                update(1 << 20)
        text = stream.getvalue()
        assert ("verify" in text and "4.00M" in text) == drawn, text
        assert drawn or text == ""


def test_log_size_skips_what_is_gone(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    assert progress.log_size(str(tmp_path), ["a", "gone"]) == 10
