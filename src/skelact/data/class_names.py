"""Class names of the built-in datasets, indexed by the 0-based label skelact uses.

* NTU RGB+D 120: the 120 action names of the official list (github.com/shahroudy/NTURGB-D, README "Action
  Classes", A1..A120), with the list's trailing periods dropped and typographic apostrophes written as ASCII.
  Label ``k`` is action ``A{k+1}``. NTU RGB+D 60 is the first 60 of them (A1..A60).
* NW-UCLA Multiview Action3D: the 10 actions of Wang et al., "Cross-view Action Modeling, Learning and
  Recognition", CVPR 2014, in the order of their action ids a01..a06, a08, a09, a11, a12 (the ids 7 and 10 are
  unused), which is the order of the 1..10 labels in CTR-GCN's ``all_sqe`` JSON files.
"""

from __future__ import annotations

NTU120_CLASS_NAMES: tuple[str, ...] = (
    # NTU RGB+D 60 (A1..A60)
    "drink water",
    "eat meal/snack",
    "brushing teeth",
    "brushing hair",
    "drop",
    "pickup",
    "throw",
    "sitting down",
    "standing up (from sitting position)",
    "clapping",
    "reading",
    "writing",
    "tear up paper",
    "wear jacket",
    "take off jacket",
    "wear a shoe",
    "take off a shoe",
    "wear on glasses",
    "take off glasses",
    "put on a hat/cap",
    "take off a hat/cap",
    "cheer up",
    "hand waving",
    "kicking something",
    "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)",
    "jump up",
    "make a phone call/answer phone",
    "playing with phone/tablet",
    "typing on a keyboard",
    "pointing to something with finger",
    "taking a selfie",
    "check time (from watch)",
    "rub two hands together",
    "nod head/bow",
    "shake head",
    "wipe face",
    "salute",
    "put the palms together",
    "cross hands in front (say stop)",
    "sneeze/cough",
    "staggering",
    "falling",
    "touch head (headache)",
    "touch chest (stomachache/heart pain)",
    "touch back (backache)",
    "touch neck (neckache)",
    "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person",
    "kicking other person",
    "pushing other person",
    "pat on back of other person",
    "point finger at the other person",
    "hugging other person",
    "giving something to other person",
    "touch other person's pocket",
    "handshaking",
    "walking towards each other",
    "walking apart from each other",
    # NTU RGB+D 120 additions (A61..A120)
    "put on headphone",
    "take off headphone",
    "shoot at the basket",
    "bounce ball",
    "tennis bat swing",
    "juggling table tennis balls",
    "hush (quite)",
    "flick hair",
    "thumb up",
    "thumb down",
    "make ok sign",
    "make victory sign",
    "staple book",
    "counting money",
    "cutting nails",
    "cutting paper (using scissors)",
    "snapping fingers",
    "open bottle",
    "sniff (smell)",
    "squat down",
    "toss a coin",
    "fold paper",
    "ball up paper",
    "play magic cube",
    "apply cream on face",
    "apply cream on hand back",
    "put on bag",
    "take off bag",
    "put something into a bag",
    "take something out of a bag",
    "open a box",
    "move heavy objects",
    "shake fist",
    "throw up cap/hat",
    "hands up (both hands)",
    "cross arms",
    "arm circles",
    "arm swings",
    "running on the spot",
    "butt kicks (kick backward)",
    "cross toe touch",
    "side kick",
    "yawn",
    "stretch oneself",
    "blow nose",
    "hit other person with something",
    "wield knife towards other person",
    "knock over other person (hit with body)",
    "grab other person's stuff",
    "shoot at other person with a gun",
    "step on foot",
    "high-five",
    "cheers and drink",
    "carry something with other person",
    "take a photo of other person",
    "follow other person",
    "whisper in other person's ear",
    "exchange things with other person",
    "support somebody with one's hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",
)

#: NTU RGB+D 60 = actions A1..A60 of the NTU RGB+D 120 list
NTU60_CLASS_NAMES: tuple[str, ...] = NTU120_CLASS_NAMES[:60]

NW_UCLA_CLASS_NAMES: tuple[str, ...] = (
    "pick up with one hand",   # a01
    "pick up with two hands",  # a02
    "drop trash",              # a03
    "walk around",             # a04
    "sit down",                # a05
    "stand up",                # a06
    "donning",                 # a08
    "doffing",                 # a09
    "throw",                   # a11
    "carry",                   # a12
)

__all__ = ["NTU120_CLASS_NAMES", "NTU60_CLASS_NAMES", "NW_UCLA_CLASS_NAMES"]
