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
