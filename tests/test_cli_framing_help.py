"""``genaug augment`` and ``genaug expand`` describe every ``--framing`` they take, in the same words (the augment help
left ``full`` out), including the face framing of named edits on a face the rule's box misplaces."""
from __future__ import annotations

import pytest

from genaug.cli import main


@pytest.mark.parametrize("command", ["augment", "expand"])
def test_the_help_describes_every_framing_choice(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    choices = out.split("--framing {", 1)[1].split("}", 1)[0].split(",")
    assert choices == ["auto", "full", "none", "detect"]
    for said in ("auto (CelebA's box", "full or none (the centre square)", "detect (dlib", "a photo of the model's size whole",
                 "named edit that draws on the face"):
        assert said in out, (command, said)
