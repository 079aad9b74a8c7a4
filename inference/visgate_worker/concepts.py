"""Concept → part template: which parts to ask the generator for, and where each part usually
sits, so that unnamed meshes (PartCrafter's, or faces of one mesh) get their names.

Anchors are in a canonical frame: x points to the object's front, y up, z to its right, and the
object fits in [-1, 1]. Extents are half-sizes, used by the demo generator to draw primitives.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class PartSlot:
    name: str
    anchor: Vec3
    extent: Vec3

    @property
    def phrase(self) -> str:
        """What a text-prompted detector is asked for."""
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class Template:
    name: str
    parts: tuple[PartSlot, ...]  # in priority order: fewer parts asked → the first ones


def _t(name: str, *parts: tuple[str, Vec3, Vec3]) -> Template:
    return Template(name, tuple(PartSlot(n, a, e) for n, a, e in parts))


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        _t(
            "quadruped",
            ("head", (0.75, 0.45, 0.0), (0.22, 0.2, 0.18)),
            ("body", (0.0, 0.1, 0.0), (0.55, 0.25, 0.25)),
            ("front_legs", (0.4, -0.5, 0.0), (0.1, 0.35, 0.22)),
            ("back_legs", (-0.4, -0.5, 0.0), (0.1, 0.35, 0.22)),
            ("tail", (-0.8, 0.3, 0.0), (0.22, 0.06, 0.06)),
            ("neck", (0.55, 0.3, 0.0), (0.12, 0.16, 0.12)),
        ),
        _t(
            "biped",
            ("head", (0.0, 0.8, 0.0), (0.18, 0.18, 0.18)),
            ("torso", (0.0, 0.3, 0.0), (0.18, 0.3, 0.25)),
            ("left_arm", (0.0, 0.35, -0.4), (0.08, 0.3, 0.08)),
            ("right_arm", (0.0, 0.35, 0.4), (0.08, 0.3, 0.08)),
            ("left_leg", (0.0, -0.5, -0.13), (0.1, 0.45, 0.1)),
            ("right_leg", (0.0, -0.5, 0.13), (0.1, 0.45, 0.1)),
        ),
        _t(
            "vehicle",
            ("body", (0.0, 0.0, 0.0), (0.8, 0.22, 0.4)),
            ("cabin", (-0.1, 0.38, 0.0), (0.4, 0.18, 0.35)),
            ("front_wheels", (0.55, -0.35, 0.0), (0.18, 0.18, 0.45)),
            ("rear_wheels", (-0.55, -0.35, 0.0), (0.18, 0.18, 0.45)),
            ("lights", (0.85, 0.05, 0.0), (0.05, 0.08, 0.3)),
        ),
        _t(
            "plant",
            ("pot", (0.0, -0.75, 0.0), (0.3, 0.2, 0.3)),
            ("stem", (0.0, -0.15, 0.0), (0.06, 0.4, 0.06)),
            ("leaves", (0.0, 0.35, 0.0), (0.45, 0.25, 0.45)),
            ("flower", (0.0, 0.8, 0.0), (0.18, 0.15, 0.18)),
        ),
        _t(
            "furniture",
            ("seat", (0.0, 0.0, 0.0), (0.45, 0.08, 0.45)),
            ("backrest", (-0.42, 0.5, 0.0), (0.06, 0.4, 0.45)),
            ("legs", (0.0, -0.55, 0.0), (0.45, 0.45, 0.45)),
            ("armrests", (0.0, 0.25, 0.0), (0.4, 0.06, 0.5)),
        ),
        _t(
            "fish",
            ("head", (0.6, 0.0, 0.0), (0.25, 0.25, 0.18)),
            ("body", (0.0, 0.0, 0.0), (0.45, 0.3, 0.18)),
            ("tail_fin", (-0.75, 0.0, 0.0), (0.2, 0.3, 0.04)),
            ("dorsal_fin", (0.0, 0.42, 0.0), (0.2, 0.12, 0.03)),
            ("pectoral_fins", (0.25, -0.2, 0.0), (0.12, 0.05, 0.3)),
        ),
        _t(
            "aircraft",
            ("fuselage", (0.0, 0.0, 0.0), (0.9, 0.12, 0.12)),
            ("wings", (0.05, 0.0, 0.0), (0.25, 0.03, 0.95)),
            ("tail", (-0.82, 0.25, 0.0), (0.12, 0.2, 0.3)),
            ("engines", (0.15, -0.15, 0.0), (0.15, 0.06, 0.5)),
            ("cockpit", (0.78, 0.12, 0.0), (0.12, 0.06, 0.08)),
        ),
        _t(
            "bird",
            ("head", (0.5, 0.5, 0.0), (0.15, 0.15, 0.14)),
            ("body", (0.0, 0.1, 0.0), (0.4, 0.25, 0.22)),
            ("wings", (0.0, 0.2, 0.0), (0.3, 0.05, 0.7)),
            ("tail", (-0.6, 0.05, 0.0), (0.2, 0.04, 0.12)),
            ("beak", (0.72, 0.45, 0.0), (0.08, 0.04, 0.04)),
            ("legs", (0.05, -0.5, 0.0), (0.05, 0.25, 0.12)),
        ),
        _t(
            "object",
            ("main", (0.0, 0.0, 0.0), (0.5, 0.4, 0.5)),
            ("top", (0.0, 0.65, 0.0), (0.35, 0.15, 0.35)),
            ("base", (0.0, -0.65, 0.0), (0.45, 0.15, 0.45)),
            ("front", (0.65, 0.0, 0.0), (0.15, 0.3, 0.3)),
        ),
    )
}

_KEYWORDS: dict[str, tuple[str, ...]] = {
    "quadruped": (
        "cat kitten kitty dog puppy fox wolf horse pony foal cow bull calf ox sheep lamb goat pig "
        "lion tiger leopard cheetah jaguar panther bear deer elk moose elephant giraffe rabbit "
        "bunny hare mouse rat squirrel zebra camel donkey panda raccoon hippo rhino dinosaur "
        "lizard crocodile alligator unicorn dragon hedgehog otter beaver badger hyena"
    ).split(),
    "biped": (
        "person man woman boy girl child kid human robot knight soldier astronaut wizard witch "
        "warrior ninja samurai zombie gorilla ape character figure figurine statue king queen "
        "prince princess pirate alien elf dwarf skeleton doctor chef dancer superhero"
    ).split(),
    "vehicle": (
        "car truck bus van jeep tractor tank train locomotive bicycle bike motorcycle motorbike "
        "scooter taxi ambulance racecar sedan suv pickup boat ship submarine forklift"
    ).split(),
    "plant": (
        "plant tree flower rose tulip cactus bush shrub bonsai sunflower fern palm daisy lily "
        "orchid succulent mushroom"
    ).split(),
    "furniture": (
        "chair table sofa couch bench stool desk bed armchair cabinet shelf bookshelf dresser "
        "throne ottoman nightstand wardrobe"
    ).split(),
    "fish": (
        "fish shark whale dolphin salmon tuna goldfish trout carp koi clownfish piranha"
    ).split(),
    "aircraft": (
        "airplane plane aeroplane jet airliner helicopter drone glider spaceship spacecraft "
        "rocket fighter bomber biplane"
    ).split(),
    "bird": (
        "bird eagle parrot owl crow raven pigeon dove duck chicken hen rooster penguin swan "
        "sparrow hawk falcon flamingo seagull goose peacock hummingbird toucan robin"
    ).split(),
}
_CONCEPT_OF = {word: concept for concept, words in _KEYWORDS.items() for word in words}
_WORD = re.compile(r"[a-z]+")


def concept_of(text: str) -> str:
    """The template name for a prompt: the first word that names a known kind of thing."""
    for word in _WORD.findall(text.lower()):
        for candidate in (word, word.removesuffix("s"), word.removesuffix("es")):
            if candidate in _CONCEPT_OF:
                return _CONCEPT_OF[candidate]
    return "object"


def part_slots(template: Template, num_parts: int | None) -> list[PartSlot]:
    """The template's parts cut or extended to `num_parts`; extras (`part_7`, ...) sit on a ring."""
    if num_parts is None:
        return list(template.parts)
    slots = list(template.parts[:num_parts])
    extra = num_parts - len(slots)
    for i in range(extra):
        angle = 2 * math.pi * i / max(extra, 1)
        anchor = (round(0.7 * math.cos(angle), 3), 0.0, round(0.7 * math.sin(angle), 3))
        slots.append(PartSlot(f"part_{len(slots) + 1}", anchor, (0.15, 0.15, 0.15)))
    return slots
