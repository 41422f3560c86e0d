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


# Element names of the HTML standard, plus the obsolete presentational ones scraped answers still
# use and Word's <xml> island. Only these and Office's namespaced tags (<o:p>) count as markup.
_HTML_ELEMENTS = frozenset({
    "a", "abbr", "address", "area", "article", "aside", "audio", "b", "base", "bdi", "bdo",
    "blockquote", "body", "br", "button", "canvas", "caption", "cite", "code", "col", "colgroup",
    "data", "datalist", "dd", "del", "details", "dfn", "dialog", "div", "dl", "dt", "em", "embed",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "head",
    "header", "hgroup", "hr", "html", "i", "iframe", "img", "input", "ins", "kbd", "label", "legend",
    "li", "link", "main", "map", "mark", "menu", "meta", "meter", "nav", "noscript", "object", "ol",
    "optgroup", "option", "output", "p", "picture", "pre", "progress", "q", "rp", "rt", "ruby", "s",
    "samp", "script", "search", "section", "select", "slot", "small", "source", "span", "strong",
    "style", "sub", "summary", "sup", "table", "tbody", "td", "template", "textarea", "tfoot", "th",
    "thead", "time", "title", "tr", "track", "u", "ul", "var", "video", "wbr",
    "acronym", "big", "center", "font", "nobr", "strike", "tt", "xml",
})
_OFFICE_PREFIXES = frozenset({"o", "w", "m", "v", "st1"})  # Word / VML / smart-tag namespaces
# A "<" and what may follow it: a comment / declaration / processing instruction opener, or
# something tag-shaped (name, attributes, ">"), or nothing (a bare "<" as in "<3").
_ANGLE_OPEN = re.compile(r"<(?:[!?]|/?(?P<name>[A-Za-z][\w.-]*(?::[A-Za-z][\w.-]*)?)(?P<attrs>[^<>]*)>)?")


def _is_markup(match: re.Match[str]) -> bool:
    if match.group(0) in ("<!", "<?"):
        return True
    name = match.group("name")
    if name is None:
        return False
    prefix, _, local = name.lower().rpartition(":")
    known = prefix in _OFFICE_PREFIXES if prefix else local in _HTML_ELEMENTS
    if not known:
        return False
    # "x<b and b>c" has a tag's name but not its shape: real attributes are name=value.
    attrs = match.group("attrs").strip().rstrip("/").strip()
    return not attrs or "=" in attrs


def _escape_angle_text(html: str) -> str:
    """Escape every "<" that does not open markup, so the parser keeps it as text (I feel <insert
    feeling>, x<y and y>z); the parser decodes the &lt; back to "<"."""
    return _ANGLE_OPEN.sub(lambda m: m.group(0) if _is_markup(m) else "&lt;" + m.group(0)[1:], html)


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment, entities decoded, paragraph breaks kept as blank lines.

    A "<...>" counts as a tag only when its name is an HTML element; other angle-bracket text stays.
    """
    parser = _TextExtractor()
    parser.feed(_escape_angle_text(html))
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
