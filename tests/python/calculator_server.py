"""The seed's CalculatorService (the very class of the Python example,
`services/python/calculator.py`), served by RPyC's own ThreadedServer on
127.0.0.1 (on the port given, or a free one); prints the port first."""
import pathlib
import sys

import threaded

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "services" / "python"))
from calculator import CalculatorService  # noqa: E402

if __name__ == "__main__":
    threaded.serve(CalculatorService)
