"""Prompts for text-cue generation (TeSO §3.2, Appendix A), written for this project.

Captioner: the paper's dense-caption instruction. Reasoner: a few-shot chain-of-thought
template following the paper's description of its Fig. 3 / Fig. A5 (the template itself
is not published): identify the objects -> categorise them -> decide which can sound
-> decide which can sound together -> answer. The demonstrations cover zero, one and
several sounding objects in static and dynamic scenes, and end with one strict answer
line that ``parser.parse_answer`` reads.
"""
from __future__ import annotations

CAPTION_PROMPT = "Please carefully understand the image content and provide as rich a description as possible."

ANSWER_PREFIX = "Sounding objects:"

SYSTEM = (
    "You find the potential sounding objects in a scene description. Reason step by step:\n"
    "1. Objects: list the objects and living beings the description mentions.\n"
    "2. Categories: group them (people, animals, musical instruments, vehicles, machines, other).\n"
    "3. Can sound: for each group, say which objects can make a sound in this scene and why "
    "(is it being played, moving, switched on, vocalising?).\n"
    "4. Sound together: decide which of those can plausibly sound at the same time "
    "(a singer can play guitar, but nobody sings while blowing a saxophone) and keep the most confident group.\n"
    f"5. Finish with one line '{ANSWER_PREFIX} <names>' listing at most {{max_cues}} short object names, "
    f"most confident first, comma-separated, or '{ANSWER_PREFIX} none' if nothing in the scene makes a sound."
)

# (description, reasoning ending in the answer line)
EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "A young man with a beard sits on a stool singing into a microphone while strumming an acoustic guitar. "
        "Behind him a woman plays a drum kit on a small stage under colourful lights, and a saxophone rests on a stand.",
        "Objects: man, microphone, guitar, woman, drum kit, saxophone, stool, lights.\n"
        "Categories: people (man, woman); musical instruments (guitar, drum kit, saxophone); "
        "equipment and furniture (microphone, stool, lights).\n"
        "Can sound: the man is singing; the guitar is being strummed; the drum kit is being played by the woman. "
        "The saxophone rests on a stand with nobody playing it. Microphone, stool and lights make no sound themselves.\n"
        "Sound together: the man sings while playing the guitar and the woman drums at the same time; "
        "the saxophone stays silent.\n"
        f"{ANSWER_PREFIX} man, guitar, drum",
    ),
    (
        "A quiet, empty living room with a grey sofa, a wooden coffee table holding a vase of flowers, "
        "a bookshelf and a piano with its lid closed. Sunlight falls through the window.",
        "Objects: sofa, coffee table, vase, flowers, bookshelf, piano, window.\n"
        "Categories: furniture (sofa, coffee table, bookshelf); decoration (vase, flowers); "
        "musical instruments (piano); building (window).\n"
        "Can sound: furniture, decoration and windows are silent. The piano could sound, but its lid is closed "
        "and nobody is in the room to play it.\n"
        "Sound together: nothing in the scene is making a sound.\n"
        f"{ANSWER_PREFIX} none",
    ),
    (
        "A brown dog stands in a grassy backyard with its mouth wide open, facing a wooden fence. "
        "A red ball lies on the grass next to it.",
        "Objects: dog, backyard, grass, fence, ball.\n"
        "Categories: animals (dog); places and plants (backyard, grass); objects (fence, ball).\n"
        "Can sound: the dog has its mouth open toward the fence, so it is likely barking. "
        "The ball lies still and the fence is static.\n"
        "Sound together: only the dog.\n"
        f"{ANSWER_PREFIX} dog",
    ),
    (
        "A man sits on a sofa with an electric guitar on his lap. His hands are away from the strings "
        "and he is talking toward a camera on a tripod.",
        "Objects: man, sofa, electric guitar, camera, tripod.\n"
        "Categories: people (man); musical instruments (electric guitar); furniture and equipment "
        "(sofa, camera, tripod).\n"
        "Can sound: the man is talking. The guitar is not being played because his hands are off the strings. "
        "The camera and tripod are silent.\n"
        "Sound together: only the man's voice.\n"
        f"{ANSWER_PREFIX} man",
    ),
    (
        "A busy city street at night: cars and a bus drive past, a motorcycle speeds through the intersection, "
        "an ambulance with flashing lights approaches, and pedestrians wait at the crosswalk beside a traffic light.",
        "Objects: street, cars, bus, motorcycle, ambulance, pedestrians, crosswalk, traffic light.\n"
        "Categories: vehicles (cars, bus, motorcycle, ambulance); people (pedestrians); "
        "infrastructure (street, crosswalk, traffic light).\n"
        "Can sound: moving vehicles make engine noise, and the ambulance with flashing lights is likely sounding "
        "its siren. Waiting pedestrians may talk, but less surely. Infrastructure is silent.\n"
        "Sound together: the ambulance siren, the speeding motorcycle and the passing cars and bus all sound "
        "at once; the pedestrians are a less confident guess.\n"
        f"{ANSWER_PREFIX} ambulance, motorcycle, car, bus",
    ),
    (
        "On a street corner a woman in a red coat plays a saxophone with her eyes closed, while a man next to her "
        "holds a violin under his arm and watches. A small crowd of people stands around them.",
        "Objects: woman, saxophone, man, violin, crowd of people, street corner.\n"
        "Categories: people (woman, man, crowd); musical instruments (saxophone, violin); place (street corner).\n"
        "Can sound: the woman is playing the saxophone. The man only holds the violin under his arm, so it is "
        "not played. The crowd is watching.\n"
        "Sound together: the woman cannot sing while blowing the saxophone, so the sound comes from her "
        "saxophone playing alone.\n"
        f"{ANSWER_PREFIX} saxophone, woman",
    ),
)


def system_prompt(max_cues: int) -> str:
    return SYSTEM.format(max_cues=max_cues)


def user_turn(caption: str) -> str:
    return f"Description: {caption.strip()}"


def chat_messages(caption: str, max_cues: int) -> list[dict[str, str]]:
    """System instruction, the demonstrations as past turns, then the new description."""
    messages = [{"role": "system", "content": system_prompt(max_cues)}]
    for description, reasoning in EXAMPLES:
        messages.append({"role": "user", "content": user_turn(description)})
        messages.append({"role": "assistant", "content": reasoning})
    messages.append({"role": "user", "content": user_turn(caption)})
    return messages


def text_prompt(caption: str, max_cues: int) -> str:
    """The same prompt as plain text for base models without a chat template."""
    parts = [system_prompt(max_cues)]
    for description, reasoning in EXAMPLES:
        parts.append(f"{user_turn(description)}\n{reasoning}")
    parts.append(f"{user_turn(caption)}\nObjects:")
    return "\n\n".join(parts)
