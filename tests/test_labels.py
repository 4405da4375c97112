import xml.etree.ElementTree as ET

from govfacts.labels import default_labels

SPEC_LABELS = """POSTS_PUBLISHED SOCIAL_MEDIA_POSTS POLICY_INTERPRETATIONS DOCUMENTS_ISSUED PRESS_CONFERENCES
MEDIA_COVERAGE PUBLICITY_EVENTS MATERIALS_DISTRIBUTED WEBSITE_VISITS CALLS_ANSWERED HOTLINE_SEATS ONLINE_INQUIRIES
VISITORS_RECEIVED APPLICATIONS_RECEIVED APPLICATIONS_ANSWERED RECONSIDERATIONS LAWSUITS COMPLAINTS FEES STAFF
TRAININGS PROPOSALS_HANDLED RESPONSE_RATE""".split()


def test_contract_labels_in_order():
    assert default_labels().names == SPEC_LABELS


def test_bio_tags_and_maps_are_derived():
    ls = default_labels()
    assert len(ls.bio_tags) == 1 + 2 * 23 and ls.bio_tags[0] == "O"
    assert ls.id2label[1] == "B-POSTS_PUBLISHED" and ls.label2id["I-RESPONSE_RATE"] == 46
    assert all(lab.meaning and lab.units for lab in ls.labels)


def test_studio_config_is_valid_xml_with_every_label():
    root = ET.fromstring(default_labels().studio_config())
    labels = root.find("Labels")
    assert labels.get("name") == "label" and labels.get("toName") == "text"
    assert [e.get("value") for e in labels.findall("Label")] == SPEC_LABELS
    assert root.find("Text").get("value") == "$text"


def test_docs_table_is_generated_from_the_yaml():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "labels.md").read_text(encoding="utf-8")
    assert default_labels().markdown_table() in doc


def _contrast_with_white(hex_colour: str) -> float:
    """WCAG contrast ratio of white text on `hex_colour`."""
    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(hex_colour[i:i + 2], 16)) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def test_label_colours_are_readable_and_distinct():
    """Label Studio shows a selected label's name in white on its colour: pale colours were unreadable."""
    colours = default_labels().colours()
    pale = {name: round(_contrast_with_white(c), 2) for name, c in colours.items() if _contrast_with_white(c) < 4.5}
    assert not pale, f"colours too pale for white text (contrast < 4.5): {pale}"
    assert len(set(colours.values())) == len(colours)
    assert _contrast_with_white("#fffac8") < 4.5  # the check sees a pale colour


def test_a_unit_refuses_the_labels_not_counted_in_it():
    labels = default_labels()
    assert "RESPONSE_RATE" in labels.refusing("元") and "FEES" not in labels.refusing("元")
    assert "RESPONSE_RATE" not in labels.refusing("%")
    assert "DOCUMENTS_ISSUED" in labels.refusing("人次") and "VISITORS_RECEIVED" not in labels.refusing("人次")
