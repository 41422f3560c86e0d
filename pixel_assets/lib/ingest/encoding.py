"""Text repair: encoding fixes (ftfy), HTML to text, Unicode NFC, whitespace tidy."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

import ftfy

# Tags whose start or end is a paragraph / line boundary in the rendered text.
_BLOCK_TAGS = frozenset({
    "p", "div", "section", "article", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "table", "tr", "pre", "header", "footer",
})
_LINE_TAGS = frozenset({"br", "li", "hr", "td", "th"})
# Tags whose content is never visible text (Word exports put style sheets inside answers).
_INVISIBLE_TAGS = frozenset({"style", "script", "head", "title", "xml"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        # convert_charrefs decodes &amp; &#34; &nbsp; ... inside text for us.
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _INVISIBLE_TAGS:
            self._hidden_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag in _LINE_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in _LINE_TAGS or tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE_TAGS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)

    # Comments (including Word's <!--[if gte mso 9]> blocks), declarations and processing
    # instructions are markup, not text: the default handlers already ignore them.


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment, entities decoded, paragraph breaks kept as blank lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


_SPACES = re.compile(r"[^\S\n]+")  # any whitespace except newline (tabs, NBSP, ...)
_MANY_NEWLINES = re.compile(r"\n{3,}")


def tidy_whitespace(text: str) -> str:
    """One space between words, no trailing spaces, at most one blank line, trimmed ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


# Common HTML tags (open, close or self-closing). Scraped answers in JSON sources (Psych8k,
# counseling conversations) carry <p>/<br> markup; plain text almost never contains these.
_HTML_TAG = re.compile(
    r"</?(?:p|br|div|span|li|ul|ol|b|i|u|em|strong|a|h[1-6]|blockquote|font|hr)(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)


def looks_like_html(text: str) -> bool:
    return _HTML_TAG.search(text) is not None


def clean_text(text: str, *, html: bool | None = None) -> str:
    """Repair one content string: HTML -> text, ftfy, NFC, whitespace tidy.

    ``html``: True = the text is an HTML fragment, False = never treat it as HTML, None (default)
    = only when it contains common HTML tags. ftfy fixes mojibake (UTF-8 read as
    cp1252/latin-1), lone surrogates, control characters and, when the text holds no tags, HTML
    entities such as ``&amp;``.
    """
    if html or (html is None and looks_like_html(text)):
        text = html_to_text(text)
    text = ftfy.fix_text(text)
    text = unicodedata.normalize("NFC", text)
    return tidy_whitespace(text)
