"""Text repair: mojibake, entities, HTML to text, NFC, whitespace."""

import unicodedata

from pixel_assets.lib.ingest.encoding import clean_text, html_to_text, tidy_whitespace


def test_mojibake_is_repaired():
    broken = "I don’t know what to do".encode("utf-8").decode("cp1252")
    assert broken != "I don’t know what to do"
    assert clean_text(broken) == "I don't know what to do"  # ftfy also straightens the quote


def test_html_entities_in_plain_text_are_decoded():
    assert clean_text("fear &amp; anxiety &quot;always&quot;") == 'fear & anxiety "always"'


def test_html_to_text_keeps_paragraphs_and_decodes_entities():
    text = clean_text("<p>First &#34;para&#34;.</p><p>Second&nbsp;one<br>next line</p>", html=True)
    assert text == 'First "para".\n\nSecond one\nnext line'


def test_html_comments_styles_and_word_markup_are_dropped():
    html = (
        "<p><!--[if gte mso 9]><xml><w:WordDocument><w:View>Normal</w:View></w:WordDocument></xml>"
        "<![endif]--><style>p {color: red}</style>Visible <b>words</b> only.</p>"
    )
    assert clean_text(html, html=True) == "Visible words only."


def test_html_only_markup_becomes_empty():
    assert clean_text("<p><br></p>", html=True) == ""


def test_list_items_become_lines():
    assert html_to_text("<ul><li>one</li><li>two</li></ul>").split() == ["one", "two"]
    assert "one\ntwo" in clean_text("<ul><li>one</li><li>two</li></ul>", html=True)


def test_nfc_normalisation():
    decomposed = "cafe\u0301"
    assert unicodedata.normalize("NFC", decomposed) != decomposed
    assert clean_text(decomposed) == "caf\u00e9"


def test_whitespace_tidy():
    assert tidy_whitespace("  a \t b  \r\n\r\n\r\n\r\n c\u00a0 d  ") == "a b\n\nc d"


def test_html_is_detected_in_plain_sources_but_not_guessed_from_angle_brackets():
    assert clean_text("<p>I&#39;m here.</p><p>Take your time.</p>") == "I'm here.\n\nTake your time."
    assert clean_text("if a < b and c > d, I feel <3") == "if a < b and c > d, I feel <3"
    assert clean_text("<p>kept</p>", html=False) == "<p>kept</p>"


def test_angle_bracket_text_that_is_not_a_tag_survives_html_conversion():
    # One real tag makes the string HTML; the comparison and the template placeholder are not tags.
    assert clean_text("if x<y and y>z then <b>bold</b>") == "if x<y and y>z then bold"
    assert clean_text("I feel <insert feeling> when <em>you</em> leave.") == "I feel <insert feeling> when you leave."
    assert clean_text("if a<b and b>c<br>next") == "if a<b and b>c\nnext"  # a known name, but not tag-shaped
    assert clean_text("<p>Me &amp; you &lt;3 <a href='x'>link</a></p><o:p></o:p>", html=True) == "Me & you <3 link"
