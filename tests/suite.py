"""`make test`: placeholder runner until the test-infrastructure work lands."""

import subprocess
import sys

sys.exit(subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]]))
