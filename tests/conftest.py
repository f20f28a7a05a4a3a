import sys
from pathlib import Path

# Tests import shared helpers from hf_testutil (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
