"""Concept → part template: what parts a prompt asks for."""

from __future__ import annotations

import pytest

from visgate_worker.concepts import TEMPLATES, concept_of, part_slots


def test_cat_asks_for_the_quadruped_parts_in_template_order() -> None:
    concept = concept_of("a fluffy orange cat")
    assert concept == "quadruped"
    names = [slot.name for slot in part_slots(TEMPLATES[concept], None)]
    assert names == ["head", "body", "front_legs", "back_legs", "tail", "neck"]


@pytest.mark.parametrize(
    ("text", "concept"),
    [
        ("Two fighter JETS", "aircraft"),
        ("a knight riding a horse", "biped"),  # the first named thing wins
        ("red sports car", "vehicle"),
        ("potted cactus", "plant"),
        ("wooden chair", "furniture"),
        ("goldfish", "fish"),
        ("a parrot", "bird"),
        ("a teapot", "object"),
    ],
)
def test_concept_of_prompt(text: str, concept: str) -> None:
    assert concept_of(text) == concept


def test_every_template_names_distinct_parts() -> None:
    expected = {"quadruped", "biped", "vehicle", "plant", "furniture", "fish", "aircraft", "bird"}
    assert expected <= set(TEMPLATES)
    for template in TEMPLATES.values():
        names = [slot.name for slot in template.parts]
        assert len(names) == len(set(names)) >= 4


def test_num_parts_cuts_or_extends_the_template() -> None:
    quadruped = TEMPLATES["quadruped"]
    assert [s.name for s in part_slots(quadruped, 2)] == ["head", "body"]
    extended = [s.name for s in part_slots(quadruped, 8)]
    assert extended[:6] == [s.name for s in quadruped.parts]
    assert extended[6:] == ["part_7", "part_8"]
