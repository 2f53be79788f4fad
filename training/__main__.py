"""``python -m genaug.training`` (and ``torchrun -m genaug.training``): ``genaug train``, with its exit statuses."""
import sys

from genaug.cli.main import main

sys.exit(main(["train", *sys.argv[1:]]))
