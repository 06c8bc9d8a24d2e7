"""Sounding-object vocabulary: which words name things that can make a sound.

Built from four sources: AudioSet labels (the tagger's class list, asset
"audioset_labels"), PASCAL VOC and COCO classes that can emit sound, and the
AVSBench-semantic categories. Every surface form maps to a canonical cue name
(lemmatised, singular, spaces instead of hyphens): "acoustic guitar" -> "guitar",
"puppies" -> "dog".

AudioSet labels are sound *events* as often as objects ("Bark", "Jazz",
"Inside, small room"), and the CSV has no ontology to tell them apart, so the
object/event split below is curated by hand from the 527 display names.
"""
from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lemminflect import getLemma

from .. import assets
from ..errors import AssetError

log = logging.getLogger(__name__)

# AVSBench-semantic categories (70, without "background"), from the AVSBench metadata.
AVSBENCH = (
    "accordion airplane axe baby bassoon bell bird boat boy bus car cat cello clarinet clipper clock dog "
    "donkey drum duck elephant emergency-car erhu flute frying-food girl goose guitar gun guzheng "
    "hair-dryer handpan harmonica harp helicopter hen horse keyboard leopard lion man marimba "
    "missile-rocket motorcycle mower parrot piano pig pipa saw saxophone sheep sitar sorna squirrel "
    "tabla tank tiger tractor train trombone truck trumpet tuba ukulele utv vacuum-cleaner violin wolf woman"
).split()

# PASCAL VOC classes that can emit sound (VOC name -> canonical).
VOC_SOUNDING = {
    "aeroplane": "airplane", "bicycle": "bicycle", "bird": "bird", "boat": "boat", "bus": "bus", "car": "car",
    "cat": "cat", "cow": "cow", "dog": "dog", "horse": "horse", "motorbike": "motorcycle", "person": "person",
    "sheep": "sheep", "train": "train", "tvmonitor": "tv",
}

# COCO classes that can emit sound; the rest (food, furniture, accessories) are silent props.
COCO_SOUNDING = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "sports ball", "skateboard",
    "tv", "laptop", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator",
    "clock", "scissors", "hair drier", "toothbrush",
)

# AudioSet display names that name a sounding object -> canonical cue. Their comma-separated
# alternatives are also surface forms for text matching ("Violin, fiddle" -> "fiddle").
AUDIOSET_OBJECTS = {
    "Musical instrument": "instrument", "Plucked string instrument": "instrument",
    "Bowed string instrument": "instrument", "Brass instrument": "instrument",
    "Wind instrument, woodwind instrument": "instrument", "Animal": "animal", "Dog": "dog", "Cat": "cat", "Horse": "horse", "Cattle, bovinae": "cow",
    "Cowbell": "cowbell", "Pig": "pig", "Goat": "goat", "Sheep": "sheep", "Chicken, rooster": "chicken",
    "Turkey": "turkey", "Duck": "duck", "Goose": "goose", "Bird": "bird", "Pigeon, dove": "pigeon",
    "Crow": "crow", "Owl": "owl", "Mouse": "mouse", "Insect": "insect", "Cricket": "cricket",
    "Mosquito": "mosquito", "Bee, wasp, etc.": "bee", "Frog": "frog", "Snake": "snake",
    "Guitar": "guitar", "Electric guitar": "guitar", "Bass guitar": "bass guitar", "Acoustic guitar": "guitar",
    "Steel guitar, slide guitar": "guitar", "Banjo": "banjo", "Sitar": "sitar", "Mandolin": "mandolin",
    "Zither": "zither", "Ukulele": "ukulele", "Keyboard (musical)": "keyboard", "Piano": "piano",
    "Electric piano": "piano", "Organ": "organ", "Electronic organ": "organ", "Hammond organ": "organ",
    "Synthesizer": "synthesizer", "Harpsichord": "harpsichord", "Drum kit": "drum", "Drum machine": "drum machine",
    "Drum": "drum", "Snare drum": "drum", "Bass drum": "drum", "Timpani": "timpani", "Tabla": "tabla",
    "Cymbal": "cymbal", "Hi-hat": "cymbal", "Tambourine": "tambourine", "Maraca": "maraca", "Gong": "gong",
    "Marimba, xylophone": "marimba", "Glockenspiel": "glockenspiel", "Vibraphone": "vibraphone",
    "Steelpan": "steelpan", "French horn": "french horn", "Trumpet": "trumpet", "Trombone": "trombone",
    "Violin, fiddle": "violin", "Cello": "cello", "Double bass": "double bass", "Flute": "flute",
    "Saxophone": "saxophone", "Clarinet": "clarinet", "Harp": "harp", "Bell": "bell", "Church bell": "bell",
    "Jingle bell": "bell", "Bicycle bell": "bell", "Tuning fork": "tuning fork", "Wind chime": "wind chime",
    "Harmonica": "harmonica", "Accordion": "accordion", "Bagpipes": "bagpipes", "Didgeridoo": "didgeridoo",
    "Theremin": "theremin", "Singing bowl": "singing bowl", "Waterfall": "waterfall", "Ocean": "ocean",
    "Boat, Water vehicle": "boat", "Sailboat, sailing ship": "boat", "Rowboat, canoe, kayak": "boat",
    "Motorboat, speedboat": "boat", "Ship": "ship", "Car": "car", "Race car, auto racing": "car",
    "Truck": "truck", "Ice cream truck, ice cream van": "truck", "Bus": "bus", "Police car (siren)": "car",
    "Ambulance (siren)": "ambulance", "Fire engine, fire truck (siren)": "fire truck", "Motorcycle": "motorcycle",
    "Train": "train", "Subway, metro, underground": "train", "Aircraft": "airplane", "Helicopter": "helicopter",
    "Fixed-wing aircraft, airplane": "airplane", "Bicycle": "bicycle", "Skateboard": "skateboard",
    "Engine": "engine", "Lawn mower": "mower", "Chainsaw": "chainsaw", "Door": "door", "Doorbell": "doorbell",
    "Microwave oven": "microwave", "Blender": "blender", "Water tap, faucet": "faucet", "Hair dryer": "hair dryer",
    "Toilet flush": "toilet", "Toothbrush": "toothbrush", "Electric toothbrush": "toothbrush",
    "Vacuum cleaner": "vacuum cleaner", "Scissors": "scissors", "Electric shaver, electric razor": "shaver",
    "Typewriter": "typewriter", "Computer keyboard": "keyboard", "Telephone": "phone", "Alarm clock": "clock",
    "Siren": "siren", "Smoke detector, smoke alarm": "smoke alarm", "Whistle": "whistle", "Clock": "clock",
    "Sewing machine": "sewing machine", "Mechanical fan": "fan", "Air conditioning": "air conditioner",
    "Cash register": "cash register", "Printer": "printer", "Camera": "camera",
    "Single-lens reflex camera": "camera", "Hammer": "hammer", "Jackhammer": "jackhammer",
    "Power tool": "power tool", "Drill": "drill", "Machine gun": "gun", "Cap gun": "gun", "Fireworks": "fireworks",
    "Firecracker": "firecracker", "Television": "tv", "Radio": "radio",
}

# AudioSet sound events -> the object that typically makes them (used for tagger labels only,
# never as text surface forms: "bark" in a caption may be tree bark).
AUDIOSET_EVENTS = {
    "Speech": "person", "Male speech, man speaking": "man", "Female speech, woman speaking": "woman",
    "Child speech, kid speaking": "child", "Conversation": "person", "Narration, monologue": "person",
    "Babbling": "baby", "Shout": "person", "Bellow": "person", "Yell": "person", "Children shouting": "child",
    "Screaming": "person", "Whispering": "person", "Laughter": "person", "Baby laughter": "baby",
    "Giggle": "person", "Crying, sobbing": "person", "Baby cry, infant cry": "baby", "Singing": "person",
    "Choir": "person", "Male singing": "man", "Female singing": "woman", "Child singing": "child",
    "Rapping": "person", "Humming": "person", "Whistling": "person", "Cough": "person", "Sneeze": "person",
    "Clapping": "person", "Cheering": "person", "Applause": "person", "Chatter": "person", "Crowd": "person",
    "Children playing": "child", "Bark": "dog", "Yip": "dog", "Howl": "dog", "Bow-wow": "dog",
    "Growling": "dog", "Whimper (dog)": "dog", "Purr": "cat", "Meow": "cat", "Caterwaul": "cat",
    "Clip-clop": "horse", "Neigh, whinny": "horse", "Moo": "cow", "Oink": "pig", "Bleat": "sheep",
    "Cluck": "chicken", "Crowing, cock-a-doodle-doo": "chicken", "Gobble": "turkey", "Quack": "duck",
    "Honk": "goose", "Roaring cats (lions, tigers)": "lion", "Bird vocalization, bird call, bird song": "bird",
    "Chirp, tweet": "bird", "Squawk": "bird", "Coo": "pigeon", "Caw": "crow", "Hoot": "owl",
    "Bird flight, flapping wings": "bird", "Croak": "frog", "Strum": "guitar", "Rimshot": "drum",
    "Drum roll": "drum", "Vehicle horn, car horn, honking": "car", "Car alarm": "car", "Car passing by": "car",
    "Air horn, truck horn": "truck", "Air brake": "truck", "Reversing beeps": "truck",
    "Emergency vehicle": "emergency car", "Train whistle": "train", "Train horn": "train",
    "Railroad car, train wagon": "train", "Train wheels squealing": "train", "Aircraft engine": "airplane",
    "Jet engine": "airplane", "Propeller, airscrew": "airplane", "Engine starting": "engine",
    "Idling": "engine", "Accelerating, revving, vroom": "engine", "Ding-dong": "doorbell",
    "Sliding door": "door", "Knock": "door", "Frying (food)": "frying food", "Typing": "keyboard",
    "Telephone bell ringing": "phone", "Ringtone": "phone", "Telephone dialing, DTMF": "phone",
    "Tick-tock": "clock", "Sawing": "saw", "Gunshot, gunfire": "gun", "Fusillade": "gun",
    "Artillery fire": "cannon", "Basketball bounce": "ball", "Civil defense siren": "siren",
    "Fire alarm": "smoke alarm", "Steam whistle": "whistle", "Foghorn": "ship",
}

# Everyday words that name a sounding object but appear in no class list above.
SYNONYMS = {
    "people": "person", "guy": "man", "gentleman": "man", "lady": "woman", "kid": "child",
    "toddler": "child", "infant": "baby", "puppy": "dog", "kitten": "cat", "kitty": "cat", "rooster": "chicken",
    "automobile": "car", "vehicle": "car", "plane": "airplane", "aeroplane": "airplane", "jet": "airplane",
    "motorbike": "motorcycle", "scooter": "motorcycle", "television": "tv", "smartphone": "phone",
    "cellphone": "phone", "drumset": "drum", "sax": "saxophone", "singer": "person", "musician": "person",
    "guitarist": "person", "pianist": "person", "drummer": "person", "violinist": "person",
    "speaker": "loudspeaker", "loudspeaker": "loudspeaker", "hair drier": "hair dryer", "cell phone": "phone",
    "sports ball": "ball",
}

# Words of the class names above are kept as written: the lemmatiser would turn
# "harmonica" into "harmonicon" and "sports" into "sport".
_BASE_WORDS = frozenset(
    w
    for name in (*AVSBENCH, *VOC_SOUNDING.values(), *COCO_SOUNDING, *AUDIOSET_OBJECTS.values(),
                 *AUDIOSET_EVENTS.values(), *SYNONYMS.values())
    for w in re.sub(r"[-_]", " ", name).split()
)


def canonical(term: str) -> str:
    """Lower-case, hyphens to spaces, each word lemmatised as a noun: 'Hair-dryers' -> 'hair dryer'."""
    words = re.sub(r"[-_]", " ", term.lower()).split()
    return " ".join(lemma(w) for w in words)


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """Singular noun form of ``word`` (unchanged when the lemmatiser does not know it as a noun)."""
    if word in _BASE_WORDS:
        return word
    forms = getLemma(word, upos="NOUN")
    return forms[0] if forms else word


def _alternatives(display_name: str) -> list[str]:
    """'Violin, fiddle' -> ['violin', 'fiddle']; parenthesised qualifiers are dropped."""
    plain = re.sub(r"\([^)]*\)", "", display_name)
    return [canonical(a) for a in plain.split(",") if a.strip() and a.strip() != "etc."]


def read_audioset_labels(path: str | Path | None = None) -> list[str]:
    """Display names from an AudioSet class_labels_indices.csv (default: the shared asset)."""
    path = Path(path) if path else assets.resolve("audioset_labels")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "display_name" not in rows[0]:
        raise AssetError(f"{path} is not an AudioSet class list (needs a 'display_name' column)")
    return [r["display_name"] for r in rows]


@dataclass
class Vocabulary:
    """Surface phrase (canonical form) -> cue name, plus tagger label -> cue name."""

    terms: dict[str, str] = field(default_factory=dict)
    label_to_cue: dict[str, str] = field(default_factory=dict)

    @property
    def max_words(self) -> int:
        return max((len(t.split()) for t in self.terms), default=1)

    def cue_for_label(self, label: str) -> str | None:
        """Cue for a tagger label: curated object/event map, else the label itself if it names an object."""
        if label in self.label_to_cue:
            return self.label_to_cue[label]
        for alt in _alternatives(label):
            if alt in self.terms:
                return self.terms[alt]
        return None

    @classmethod
    def build(cls, audioset_labels: list[str] | None) -> Vocabulary:
        vocab = cls()

        def add(surface: str, cue: str) -> None:
            vocab.terms.setdefault(canonical(surface), canonical(cue))

        for surface, cue in SYNONYMS.items():  # first: they override class-list spellings
            add(surface, cue)
        for name in AVSBENCH:
            add(name, name)
        for name, cue in VOC_SOUNDING.items():
            add(name, cue)
        for name in COCO_SOUNDING:
            add(name, name)
        if audioset_labels is not None:
            known = set(audioset_labels)
            for name in audioset_labels:
                if name in AUDIOSET_OBJECTS:
                    cue = AUDIOSET_OBJECTS[name]
                    add(cue, cue)
                    for alt in _alternatives(name):
                        add(alt, cue)
                    vocab.label_to_cue[name] = canonical(cue)
                elif name in AUDIOSET_EVENTS:
                    vocab.label_to_cue[name] = canonical(AUDIOSET_EVENTS[name])
            missing = (set(AUDIOSET_OBJECTS) | set(AUDIOSET_EVENTS)) - known
            if missing:
                log.warning("AudioSet class list lacks %d curated labels (e.g. %s)", len(missing), sorted(missing)[:3])
        for cue in set(vocab.label_to_cue.values()):
            add(cue, cue)
        return vocab


@lru_cache(maxsize=4)
def default_vocabulary(audioset_csv: str | None = None) -> Vocabulary:
    """Vocabulary with the AudioSet part when the class list asset is available."""
    try:
        labels = read_audioset_labels(audioset_csv)
    except AssetError as exc:
        log.warning("sounding-object vocabulary without AudioSet labels: %s", exc)
        labels = None
    return Vocabulary.build(labels)
